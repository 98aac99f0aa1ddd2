#pragma once
// What the CPU and the OS let this process execute, and which kernel family (instruction set
// level) the quantized decode kernels use. Detection reads CPUID and, for the AVX and AVX-512
// register states, XGETBV (the OS must have enabled saving them: XSAVE/XCR0), so a kernel is
// never chosen for an extension the CPU or OS lacks. AMX is never used by our code (oneDNN asks
// the kernel for AMX permission itself).
// Thread-safety: all functions are thread-safe; detection runs once.

#include <string_view>

#include "absl/status/statusor.h"

namespace ctxmem::model {

// Kernel families, lowest first. Each needs every feature of the ones below it.
enum class CpuIsa {
  kScalar,      // portable C++ (any x86-64 or other CPU)
  kAvx2,        // AVX2 + FMA + F16C
  kAvx512Vnni,  // AVX-512 F/BW/VL/DQ + VNNI (+ AVX2 set); int8 dot products with vpdpbusd
};

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512vnni = false, avx512bf16 = false;
  bool amx_tile = false;   // reported only; never executed by ctxmem code
  bool os_avx = false;     // XCR0 has the SSE and AVX state bits
  bool os_avx512 = false;  // XCR0 has the opmask and ZMM state bits
};

// The detected features (CPUID + XGETBV), computed once.
const CpuFeatures& DetectCpuFeatures();

// Highest family the CPU and OS support.
CpuIsa DetectedCpuIsa();

// The family the kernels use: DetectedCpuIsa(), capped by the CTXMEM_CPU_ISA environment
// variable when it names a lower one ("scalar", "avx2", "avx512_vnni"; read once at first use,
// the way ATen reads ATEN_CPU_CAPABILITY, so a whole test run can be forced onto the portable
// path). A cap above what the CPU supports is ignored: the detected family is never exceeded.
CpuIsa ActiveCpuIsa();

// "scalar", "avx2", "avx512_vnni".
std::string_view CpuIsaName(CpuIsa isa);
// Inverse of CpuIsaName; InvalidArgument listing the names.
absl::StatusOr<CpuIsa> ParseCpuIsa(std::string_view name);

}  // namespace ctxmem::model
