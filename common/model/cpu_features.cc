#include "common/model/cpu_features.h"

#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define CTXMEM_X86 1
#endif

namespace ctxmem::model {
namespace {

#ifdef CTXMEM_X86
// XGETBV(0) = XCR0, the register states the OS saves on context switches. Only executed after
// CPUID reported OSXSAVE (the OS enabled XSAVE), as the instruction faults otherwise.
uint64_t ReadXcr0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
#endif

CpuFeatures Detect() {
  CpuFeatures f;
#ifdef CTXMEM_X86
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0, &eax, &ebx, &ecx, &edx) == 0) return f;
  const unsigned max_leaf = eax;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return f;
  const bool osxsave = (ecx >> 27) & 1;
  f.fma = (ecx >> 12) & 1;
  f.f16c = (ecx >> 29) & 1;
  const bool avx = (ecx >> 28) & 1;
  if (osxsave && avx) {
    const uint64_t xcr0 = ReadXcr0();
    f.os_avx = (xcr0 & 0x6) == 0x6;                   // bits 1 (SSE) and 2 (AVX/YMM)
    f.os_avx512 = f.os_avx && (xcr0 & 0xe0) == 0xe0;  // bits 5-7: opmask, ZMM_Hi256, Hi16_ZMM
  }
  if (max_leaf >= 7 && __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) != 0) {
    f.avx2 = (ebx >> 5) & 1;
    f.avx512f = (ebx >> 16) & 1;
    f.avx512dq = (ebx >> 17) & 1;
    f.avx512bw = (ebx >> 30) & 1;
    f.avx512vl = (ebx >> 31) & 1;
    f.avx512vnni = (ecx >> 11) & 1;
    f.amx_tile = (edx >> 24) & 1;
    unsigned eax1 = 0, ebx1 = 0, ecx1 = 0, edx1 = 0;
    if (eax >= 1 && __get_cpuid_count(7, 1, &eax1, &ebx1, &ecx1, &edx1) != 0) {
      f.avx512bf16 = (eax1 >> 5) & 1;
    }
  }
  if (!f.os_avx) f.avx2 = f.fma = f.f16c = false;
  if (!f.os_avx512) {
    f.avx512f = f.avx512bw = f.avx512vl = f.avx512dq = f.avx512vnni = f.avx512bf16 = false;
  }
#endif
  return f;
}

CpuIsa FromFeatures(const CpuFeatures& f) {
  const bool avx2 = f.avx2 && f.fma && f.f16c;
  if (avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni) {
    return CpuIsa::kAvx512Vnni;
  }
  if (avx2) return CpuIsa::kAvx2;
  return CpuIsa::kScalar;
}

}  // namespace

const CpuFeatures& DetectCpuFeatures() {
  static const CpuFeatures features = Detect();
  return features;
}

CpuIsa DetectedCpuIsa() {
  static const CpuIsa isa = FromFeatures(DetectCpuFeatures());
  return isa;
}

CpuIsa ActiveCpuIsa() {
  static const CpuIsa isa = [] {
    CpuIsa detected = DetectedCpuIsa();
    const char* cap = std::getenv("CTXMEM_CPU_ISA");
    if (cap == nullptr || *cap == '\0') return detected;
    auto parsed = ParseCpuIsa(cap);
    if (!parsed.ok()) return detected;
    return static_cast<int>(*parsed) < static_cast<int>(detected) ? *parsed : detected;
  }();
  return isa;
}

std::string_view CpuIsaName(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kScalar:
      return "scalar";
    case CpuIsa::kAvx2:
      return "avx2";
    case CpuIsa::kAvx512Vnni:
      return "avx512_vnni";
  }
  return "unknown";
}

absl::StatusOr<CpuIsa> ParseCpuIsa(std::string_view name) {
  for (CpuIsa isa : {CpuIsa::kScalar, CpuIsa::kAvx2, CpuIsa::kAvx512Vnni}) {
    if (name == CpuIsaName(isa)) return isa;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown CPU ISA '", std::string(name), "'; valid: scalar, avx2, avx512_vnni"));
}

}  // namespace ctxmem::model
