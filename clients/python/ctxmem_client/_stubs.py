"""Imports the generated stubs, generating them first when they are missing or stale (source
checkout with grpcio-tools available). Everything else imports the modules from here."""

from . import generate as _generate

if not _generate.is_current():
    try:
        _generate.generate()
    except RuntimeError:
        if _generate.generated_hash() is None:
            raise  # no stubs at all: say why (no protos or no grpcio-tools)
        # Stale stubs but no way to regenerate: use what is there.

from ._proto.ctxmem.v1 import compressor_pb2, compressor_pb2_grpc  # noqa: E402
from ._proto.ctxmem.v1 import decoder_pb2, decoder_pb2_grpc  # noqa: E402
from ._proto.ctxmem.v1 import memory_pb2  # noqa: E402

__all__ = ["compressor_pb2", "compressor_pb2_grpc", "decoder_pb2", "decoder_pb2_grpc", "memory_pb2"]
