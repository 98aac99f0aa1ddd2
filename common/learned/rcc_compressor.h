#pragma once
// RccCompress(): compression with pruner = "rcc" (docs/rcc.md): the token stream is read in
// windows of config.rcc_window tokens (the last one may be shorter); per window the encoder
// makes ceil(n / rcc_rate) slots (RccEncode) and the decoder prefills them after the slots of
// the windows before (RccDecode with past = the memory so far, positions continuing), so the
// memory is the decoder's pre-RoPE K/V over every slot: an ordinary kSlots memory without
// sinks that any decoder reads with no RCC code. Entry i's src is its gather row in the stream.
// compress::Compress()/CompressAppend() call this for pruner = "rcc"; an append continues a
// base whose token count is a multiple of rcc_window (its slots are the past of the new ones).
// Thread-safety: may run concurrently on one Transformer with different sources.

#include "absl/status/statusor.h"
#include "common/compress/compressor.h"

namespace ctxmem::learned {

// InvalidArgument for an invalid config, an empty source, an unknown or unfitting bridge, or a
// base that does not end on a window boundary; Cancelled when hooks.should_stop says so
// (checked before every window); source and model errors with context. hooks.on_progress runs
// after every window; the other hooks are not used by RCC.
absl::StatusOr<compress::CompressResult> RccCompress(const model::Transformer& model,
                                                     compress::TokenSource& source,
                                                     const compress::CompressionConfig& config,
                                                     const compress::ResumableMemory* base,
                                                     const compress::CompressHooks& hooks);

}  // namespace ctxmem::learned
