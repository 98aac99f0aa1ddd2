// ParseDtype / ResolveDtype: the names the flags take and what "auto" picks per device.

#include <c10/core/Device.h>

#include "common/model/cpu_features.h"
#include "common/model/model.h"
#include "gtest/gtest.h"

namespace ctxmem::model {
namespace {

const c10::Device kCpu(c10::kCPU);

TEST(ModelDtypeTest, NamedDtypesParseOnEveryDevice) {
  for (const c10::Device device : {kCpu, c10::Device(c10::kCUDA, 0)}) {
    EXPECT_EQ(*ResolveDtype("fp32", device), c10::kFloat);
    EXPECT_EQ(*ResolveDtype("float32", device), c10::kFloat);
    EXPECT_EQ(*ResolveDtype("bf16", device), c10::kBFloat16);
    EXPECT_EQ(*ResolveDtype("fp16", device), c10::kHalf);
  }
}

TEST(ModelDtypeTest, AutoIsBf16OnlyWhereItIsNative) {
  EXPECT_EQ(*ResolveDtype("auto", c10::Device(c10::kCUDA, 0)), c10::kBFloat16);
  const c10::ScalarType cpu = *ResolveDtype("auto", kCpu);
  EXPECT_EQ(cpu, DetectCpuFeatures().avx512bf16 ? c10::kBFloat16 : c10::kFloat)
      << "avx512_bf16=" << DetectCpuFeatures().avx512bf16;
}

TEST(ModelDtypeTest, UnknownNamesAreInvalidArgument) {
  for (const char* name : {"", "int8", "AUTO", "bf"}) {
    const absl::StatusOr<c10::ScalarType> d = ResolveDtype(name, kCpu);
    ASSERT_FALSE(d.ok()) << name;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(d.status().message().find("valid"), std::string::npos);
  }
}

}  // namespace
}  // namespace ctxmem::model
