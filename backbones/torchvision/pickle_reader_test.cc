#include "backbones/torchvision/pickle_reader.h"

#include <random>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace panda::torchvision {
namespace {

using Kind = PickleValue::Kind;

// Python 3.11's pickle.dumps(d, protocol=P) of
//   d = OrderedDict([("a", 5), ("b", [1, -1, 2**40, -300, 1.5, "xy", b"z",
//       None, True, False, (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)])])
//   d["a2"] = d["b"]
// for P = 2 and 4.
const char kProtocol2Hex[] =
    "800263636f6c6c656374696f6e730a4f726465726564446963740a7100295271012858010000006171024b"
    "0558010000006271035d7104284b014affffffff8a060000000000014ad4feffff473ff8000000000000"
    "580200000078797105635f636f646563730a656e636f64650a710658010000007a710758060000006c61"
    "74696e31710886710952710a4e88894b0185710b4b014b0286710c4b014b024b0387710d284b014b024b"
    "034b0474710e6558020000006132710f6804752e";
const char kProtocol4Hex[] =
    "8004957f000000000000008c0b636f6c6c656374696f6e73948c0b4f72646572656444696374949394295294"
    "288c0161944b058c0162945d94284b014affffffff8a060000000000014ad4feffff473ff800000000000"
    "08c0278799443017a944e88894b0185944b014b0286944b014b024b038794284b014b024b034b047494658c"
    "026132946806752e";

std::string Bytes(const char* hex) { return absl::HexStringToBytes(hex); }

void ExpectInts(const PickleValue& tuple, std::vector<int64_t> expected) {
  ASSERT_EQ(tuple.kind, Kind::kTuple);
  ASSERT_EQ(tuple.items.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(tuple.items[i]->kind, Kind::kInt);
    EXPECT_EQ(tuple.items[i]->int_value, expected[i]);
  }
}

void ExpectExampleDict(const std::string& bytes, bool bytes_as_call) {
  const absl::StatusOr<PickleValuePtr> root = ParsePickle(bytes);
  ASSERT_TRUE(root.ok()) << root.status();
  const PickleValue& dict = **root;
  ASSERT_EQ(dict.kind, Kind::kDict);
  ASSERT_EQ(dict.entries.size(), 3u);
  EXPECT_EQ(dict.entries[0].first->string_value, "a");
  EXPECT_EQ(dict.entries[1].first->string_value, "b");
  EXPECT_EQ(dict.entries[2].first->string_value, "a2");
  EXPECT_EQ(dict.Find("a")->int_value, 5);
  EXPECT_EQ(dict.Find("missing"), nullptr);

  const PickleValuePtr list = dict.Find("b");
  ASSERT_EQ(list->kind, Kind::kList);
  // The memo hands out the same object for d["a2"].
  EXPECT_EQ(dict.Find("a2").get(), list.get());
  ASSERT_EQ(list->items.size(), 14u);
  const auto& items = list->items;
  EXPECT_EQ(items[0]->int_value, 1);
  EXPECT_EQ(items[1]->int_value, -1);
  EXPECT_EQ(items[2]->int_value, int64_t{1} << 40);
  EXPECT_EQ(items[3]->int_value, -300);
  EXPECT_EQ(items[4]->kind, Kind::kFloat);
  EXPECT_EQ(items[4]->float_value, 1.5);
  EXPECT_EQ(items[5]->kind, Kind::kString);
  EXPECT_EQ(items[5]->string_value, "xy");
  if (bytes_as_call) {
    // Protocol 2 pickles bytes as _codecs.encode("z", "latin1").
    ASSERT_EQ(items[6]->kind, Kind::kCall);
    EXPECT_EQ(items[6]->items[0]->module, "_codecs");
    EXPECT_EQ(items[6]->items[0]->name, "encode");
    EXPECT_EQ(items[6]->items[1]->items[0]->string_value, "z");
    EXPECT_EQ(DescribePickleValue(*items[6]), "an object made by _codecs.encode");
  } else {
    EXPECT_EQ(items[6]->kind, Kind::kBytes);
    EXPECT_EQ(items[6]->string_value, "z");
  }
  EXPECT_EQ(items[7]->kind, Kind::kNone);
  EXPECT_EQ(items[8]->kind, Kind::kBool);
  EXPECT_TRUE(items[8]->bool_value);
  EXPECT_FALSE(items[9]->bool_value);
  ExpectInts(*items[10], {1});
  ExpectInts(*items[11], {1, 2});
  ExpectInts(*items[12], {1, 2, 3});
  ExpectInts(*items[13], {1, 2, 3, 4});
}

TEST(PickleReaderTest, ReadsProtocol2) { ExpectExampleDict(Bytes(kProtocol2Hex), true); }

TEST(PickleReaderTest, ReadsProtocol4) { ExpectExampleDict(Bytes(kProtocol4Hex), false); }

TEST(PickleReaderTest, EveryTruncationIsDataLoss) {
  for (const char* hex : {kProtocol2Hex, kProtocol4Hex}) {
    const std::string bytes = Bytes(hex);
    for (size_t size = 0; size < bytes.size(); ++size) {
      const absl::StatusOr<PickleValuePtr> root = ParsePickle(bytes.substr(0, size));
      ASSERT_FALSE(root.ok()) << "prefix of " << size << " bytes";
      EXPECT_EQ(root.status().code(), absl::StatusCode::kDataLoss);
    }
  }
}

TEST(PickleReaderTest, RandomCorruptionNeverCrashes) {
  std::mt19937 random(7);
  const std::string original = Bytes(kProtocol2Hex);
  int failures = 0;
  for (int trial = 0; trial < 5000; ++trial) {
    std::string bytes = original;
    const int flips = 1 + trial % 4;
    for (int i = 0; i < flips; ++i) {
      bytes[random() % bytes.size()] ^= static_cast<char>(1 + random() % 255);
    }
    const absl::StatusOr<PickleValuePtr> root = ParsePickle(bytes);
    if (!root.ok()) {
      EXPECT_EQ(root.status().code(), absl::StatusCode::kDataLoss) << root.status();
      ++failures;
    }
  }
  // Most corruptions break the structure; a flip inside a string or number
  // parses.
  EXPECT_GT(failures, 1000);
}

TEST(PickleReaderTest, ReportsOpcodeAndOffset) {
  // PROTO 2, then 0xff, which is no opcode.
  absl::StatusOr<PickleValuePtr> root = ParsePickle(std::string("\x80\x02\xff.", 4));
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(root.status().message(), "unsupported opcode 0xff at byte 2"))
      << root.status();

  // BINGET 3 with an empty memo.
  root = ParsePickle(std::string("\x80\x02h\x03.", 5));
  ASSERT_FALSE(root.ok());
  EXPECT_TRUE(absl::StrContains(root.status().message(), "memo entry 3 is not set"))
      << root.status();

  // SETITEMS on a list.
  root = ParsePickle(std::string("\x80\x02](K\x01K\x02u.", 10));
  ASSERT_FALSE(root.ok());
  EXPECT_TRUE(absl::StrContains(root.status().message(), "SETITEMS on a list of 0"))
      << root.status();

  // STOP with nothing on the stack.
  root = ParsePickle(std::string("\x80\x02.", 3));
  ASSERT_FALSE(root.ok());
  EXPECT_TRUE(absl::StrContains(root.status().message(), "STOP with an empty stack"))
      << root.status();
}

TEST(PickleReaderTest, KeepsStateOfCalls) {
  // GLOBAL m.C, EMPTY_TUPLE, REDUCE, EMPTY_DICT, BUILD, STOP: C() with
  // state {}.
  const absl::StatusOr<PickleValuePtr> root =
      ParsePickle(std::string("\x80\x02" "cm\nC\n" ")R}b.", 12));
  ASSERT_TRUE(root.ok()) << root.status();
  ASSERT_EQ((*root)->kind, Kind::kCall);
  EXPECT_EQ(DescribePickleValue(**root), "an object made by m.C");
  ASSERT_NE((*root)->state, nullptr);
  EXPECT_EQ((*root)->state->kind, Kind::kDict);
}

// Found by fuzz/pickle_reader_fuzzer: MARK, DUP and APPENDS append a list to
// itself before an invalid PROTO fails the parse. The reference cycle
// leaked the list until failed parses unlinked their values.
TEST(PickleReaderTest, FailedParseWithCycleIsDataLoss) {
  const absl::StatusOr<PickleValuePtr> root = ParsePickle(Bytes(
      "898989898989898989898989898989898989898989898989898989898989898989898989"
      "800495647d94288c0161945d942832898989894b948c037373739465808989"));
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(root.status().message(), "unsupported pickle protocol 137"))
      << root.status();
}

TEST(PickleReaderTest, ValueContainingItselfIsDataLoss) {
  const struct {
    const char* name;
    std::string bytes;
    const char* described;
  } cases[] = {
      // EMPTY_LIST, DUP, APPEND.
      {"list in itself", std::string("\x80\x02]2a.", 6), "a list of 1"},
      // EMPTY_DICT, BINPUT 0, BININT1 1, BINGET 0, SETITEM: d[1] = d.
      {"dict in itself", std::string("\x80\x02}q\x00K\x01h\x00s.", 11), "a dict with 1 entries"},
      // GLOBAL m.C, EMPTY_TUPLE, REDUCE, BINPUT 0, BINGET 0, BUILD: the
      // object's state is the object.
      {"call with itself as state", std::string("\x80\x02" "cm\nC\n" ")Rq\x00h\x00" "b.", 15),
       "an object made by m.C"},
      // A list in itself, dropped with POP; the result is None.
      {"dropped cycle", std::string("\x80\x02]2a0N.", 8), "a list of 1"},
  };
  for (const auto& c : cases) {
    const absl::StatusOr<PickleValuePtr> root = ParsePickle(c.bytes);
    ASSERT_FALSE(root.ok()) << c.name;
    EXPECT_EQ(root.status().code(), absl::StatusCode::kDataLoss) << c.name;
    EXPECT_TRUE(absl::StrContains(root.status().message(),
                                  absl::StrCat(c.described, " contains itself")))
        << c.name << ": " << root.status();
  }
}

// `depth` lists, each inside the next: EMPTY_LIST `depth` times, then
// APPEND `depth - 1` times.
std::string NestedLists(int depth) {
  return "\x80\x02" + std::string(depth, ']') + std::string(depth - 1, 'a') + ".";
}

TEST(PickleReaderTest, NestingDepthIsBounded) {
  // 1001 lists nest 1000 levels deep: the outermost has depth 1000.
  absl::StatusOr<PickleValuePtr> root = ParsePickle(NestedLists(1001));
  ASSERT_TRUE(root.ok()) << root.status();
  int depth = 0;
  for (const PickleValue* value = root->get(); !value->items.empty();
       value = value->items[0].get()) {
    ++depth;
  }
  EXPECT_EQ(depth, 1000);

  root = ParsePickle(NestedLists(1002));
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(root.status().message(), "nest more than 1000 levels"))
      << root.status();

  // A million levels: rejected, and freed without recursing once per level.
  root = ParsePickle(NestedLists(1000000));
  ASSERT_FALSE(root.ok());
  EXPECT_TRUE(absl::StrContains(root.status().message(), "nest more than 1000 levels"))
      << root.status();
}

}  // namespace
}  // namespace panda::torchvision
