"""ctxmem-client: Python client of the ctxmem compressor and decoder services (gRPC).

Stubs are generated from proto/ctxmem/v1/*.proto into ctxmem_client/_proto/ (see generate.py).
CLI: `python -m ctxmem_client --help`. Docs: docs/python_client.md.
"""

from .client import (DEFAULT_COMPRESSOR, DEFAULT_DECODER, Client, CompressionConfig,
                     CompressorClient, CompressProgress, CompressResult, CtxmemError,
                     DecoderClient, DownloadResult, GenerateStream, MemoryInfo, make_config)

__version__ = "0.1.0"
__all__ = ["Client", "CompressorClient", "DecoderClient", "CtxmemError", "CompressProgress",
           "CompressResult", "DownloadResult", "GenerateStream", "MemoryInfo", "CompressionConfig",
           "make_config", "DEFAULT_COMPRESSOR", "DEFAULT_DECODER", "__version__"]
