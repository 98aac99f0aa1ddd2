#pragma once
// S3XmlReader: reads the few fields ctxmem needs out of S3's XML responses (ListObjectsV2,
// InitiateMultipartUpload, Error). S3 answers with flat, namespace-free element trees, so an
// element is found by its name alone; text is entity-decoded (&amp; &lt; &gt; &quot; &apos;
// and numeric references). Not a general XML parser: no attributes, CDATA or comments.
// Thread-safety: free functions, thread-safe.

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace ctxmem::blob {

// The raw content of every <tag>...</tag> in `xml` at any depth, in document order (nested
// elements of the same name are not supported; S3 has none). <tag/> gives "".
std::vector<absl::string_view> XmlElements(absl::string_view xml, absl::string_view tag);
// The decoded text of the first <tag> element, or nullopt when there is none.
std::optional<std::string> XmlText(absl::string_view xml, absl::string_view tag);
// Entity-decodes element text.
std::string XmlDecode(absl::string_view text);
// Escapes text for an element body (& < > " ').
std::string XmlEscape(absl::string_view text);

}  // namespace ctxmem::blob
