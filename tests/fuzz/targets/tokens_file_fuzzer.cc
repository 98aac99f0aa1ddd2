// The tokens file (common/service/token_auth: "<token> <tenant>" lines): any text parses to an
// error or to an authenticator that maps each listed token, and only those, to its tenant.
// Input: the file, then '\0' and an Authorization header value to try.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "common/service/token_auth.h"
#include "tests/fuzz/targets/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ctxmem::service::TokenAuth;
  absl::string_view all(reinterpret_cast<const char*>(data), size);
  absl::string_view text = all, header;
  if (const size_t nul = all.find('\0'); nul != absl::string_view::npos) {
    text = all.substr(0, nul);
    header = all.substr(nul + 1);
  }
  absl::StatusOr<TokenAuth> auth = TokenAuth::Parse(text);
  if (!auth.ok()) return 0;
  (void)auth->Authenticate(header);
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    CTXMEM_FUZZ_CHECK(f.size() == 2);
    absl::StatusOr<std::string> tenant = auth->Authenticate(absl::StrCat("Bearer ", f[0]));
    CTXMEM_FUZZ_CHECK(tenant.ok() && *tenant == f[1]);
    // A token that differs in its last character is not accepted for this tenant.
    std::string other(f[0]);
    other.back() = other.back() == 'x' ? 'y' : 'x';
    absl::StatusOr<std::string> wrong = auth->Authenticate(absl::StrCat("Bearer ", other));
    CTXMEM_FUZZ_CHECK(!wrong.ok() || *wrong != f[1] || text.find(other) != absl::string_view::npos);
  }
  return 0;
}
