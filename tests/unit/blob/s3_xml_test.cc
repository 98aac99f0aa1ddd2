#include "common/blob/s3_xml.h"

#include <gtest/gtest.h>

namespace ctxmem::blob {
namespace {

// The shape of a ListObjectsV2 answer (S3 API reference), trimmed.
constexpr char kList[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents><Key>p/a&amp;b.safetensors</Key><Size>10</Size><ETag>&quot;x&quot;</ETag></Contents>
  <Contents><Key>p/c&#x20;d</Key><Size>20</Size></Contents>
  <NextContinuationToken>tok/+=</NextContinuationToken>
</ListBucketResult>)";

TEST(S3XmlTest, ReadsElementsByName) {
  const auto contents = XmlElements(kList, "Contents");
  ASSERT_EQ(contents.size(), 2u);
  EXPECT_EQ(XmlText(contents[0], "Key").value(), "p/a&b.safetensors");
  EXPECT_EQ(XmlText(contents[0], "ETag").value(), "\"x\"");
  EXPECT_EQ(XmlText(contents[1], "Key").value(), "p/c d");
  EXPECT_EQ(XmlText(contents[1], "Size").value(), "20");
  // <Key> must not match <KeyCount>.
  EXPECT_EQ(XmlElements(kList, "Key").size(), 2u);
  EXPECT_EQ(XmlText(kList, "KeyCount").value(), "2");
  EXPECT_EQ(XmlText(kList, "IsTruncated").value(), "true");
  EXPECT_EQ(XmlText(kList, "NextContinuationToken").value(), "tok/+=");
  EXPECT_FALSE(XmlText(kList, "Missing").has_value());
  EXPECT_EQ(XmlText("<A><B/></A>", "B").value(), "");
}

TEST(S3XmlTest, DecodesAndEscapesEntities) {
  EXPECT_EQ(XmlDecode("&lt;a&gt; &amp; &apos;&quot; &#233; &#xE9; &bogus; &"),
            "<a> & '\" \xC3\xA9 \xC3\xA9 &bogus; &");
  EXPECT_EQ(XmlEscape("<\"a&b'>"), "&lt;&quot;a&amp;b&apos;&gt;");
  EXPECT_EQ(XmlDecode(XmlEscape("x<y>&z")), "x<y>&z");
}

TEST(S3XmlTest, TruncatedXmlYieldsWhatIsComplete) {
  EXPECT_TRUE(XmlElements("<Contents><Key>a</Key>", "Contents").empty());
  EXPECT_EQ(XmlElements("<Contents><Key>a</Key></Contents><Contents>", "Contents").size(), 1u);
  EXPECT_TRUE(XmlElements("<Key", "Key").empty());
}

}  // namespace
}  // namespace ctxmem::blob
