// Codes as the HF AQLM format stores them: B-bit two's complement in int8 / int16, as the
// authors' pack_int_data writes them (index >= 2^(B-1) stored as index - 2^B).
#include "core/format/aqlm_codes.h"

#include <gtest/gtest.h>

#include "tests/format/format_test_util.h"

namespace aqlm {
namespace {

std::vector<int32_t> encoded(const std::vector<uint16_t>& codes, int nbits) {
  std::vector<int32_t> out;
  if (aqlm_code_dtype(nbits) == DType::I8) {
    std::vector<int8_t> bytes(codes.size());
    encode_aqlm_codes(codes.data(), codes.size(), nbits, bytes.data(), "t");
    for (int8_t b : bytes) out.push_back(b);
  } else {
    std::vector<int16_t> words(codes.size());
    encode_aqlm_codes(codes.data(), codes.size(), nbits, words.data(), "t");
    for (int16_t w : words) out.push_back(w);
  }
  return out;
}

TEST(AqlmCodes, StoredAsTheAuthorsPackThem) {
  // Values worked out by hand from pack_int_data: x >= 2^(B-1) -> x - 2^B.
  EXPECT_EQ(encoded({0, 127, 128, 200, 255}, 8), (std::vector<int32_t>{0, 127, -128, -56, -1}));
  EXPECT_EQ(encoded({0, 32767, 32768, 40000, 65535}, 16), (std::vector<int32_t>{0, 32767, -32768, -25536, -1}));
  // 12 bits in int16: indices from 2048 on are negative, so their int16 bit patterns are >= 2^15.
  EXPECT_EQ(encoded({0, 2047, 2048, 3000, 4095}, 12), (std::vector<int32_t>{0, 2047, -2048, -1096, -1}));
  EXPECT_EQ(encoded({0, 7, 8, 9, 15}, 4), (std::vector<int32_t>{0, 7, -8, -7, -1}));
  EXPECT_EQ(aqlm_code_dtype(8), DType::I8);
  EXPECT_EQ(aqlm_code_dtype(9), DType::I16);
  EXPECT_EQ(aqlm_code_dtype(16), DType::I16);
}

TEST(AqlmCodes, DecodeInvertsEncodeForEveryIndex) {
  for (int nbits : {1, 4, 8, 10, 12, 16}) {
    std::vector<uint16_t> codes(size_t(1) << nbits);
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = uint16_t(i);
    std::vector<uint8_t> bytes(codes.size() * dtype_size(aqlm_code_dtype(nbits)));
    encode_aqlm_codes(codes.data(), codes.size(), nbits, bytes.data(), "t");
    const TensorView view{aqlm_code_dtype(nbits), {int64_t(codes.size())}, bytes.data()};
    EXPECT_EQ(decode_aqlm_codes(view, nbits, "t"), codes) << nbits << " bits";
  }
}

TEST(AqlmCodes, UnsignedStorageOfOlderWritersStillDecodes) {
  // 12-bit indices stored as plain non-negative int16 (what a writer that skips the sign step
  // produces): every reader maps them to the same index, so they are accepted.
  const std::vector<int16_t> stored = {0, 2048, 3000, 4095, -1096};
  const TensorView view{DType::I16, {5}, stored.data()};
  EXPECT_EQ(decode_aqlm_codes(view, 12, "t"), (std::vector<uint16_t>{0, 2048, 3000, 4095, 3000}));
}

TEST(AqlmCodes, OutOfRangeAndWrongTypeAreRefused) {
  const std::vector<int16_t> too_big = {1, 4096};
  test::expect_error([&] { decode_aqlm_codes(TensorView{DType::I16, {2}, too_big.data()}, 12, "P.codes"); },
                     {"P.codes", "stored code 4096 at position 1", "-2048 to 4095"});
  const std::vector<int16_t> too_small = {-2049};
  test::expect_error([&] { decode_aqlm_codes(TensorView{DType::I16, {1}, too_small.data()}, 12, "P.codes"); },
                     {"stored code -2049 at position 0"});
  const std::vector<int8_t> bytes = {1, 2};
  test::expect_error([&] { decode_aqlm_codes(TensorView{DType::I8, {2}, bytes.data()}, 12, "P.codes"); },
                     {"P.codes", "I8", "12-bit codes are stored as I16"});
  const std::vector<uint16_t> codes = {3, 256};
  std::vector<int8_t> out(2);
  test::expect_error([&] { encode_aqlm_codes(codes.data(), 2, 8, out.data(), "P.codes"); },
                     {"P.codes", "code 256 at position 1", "2^8"});
  test::expect_error([] { aqlm_code_dtype(17); }, {"17 bits", "1 to 16"});
}

}  // namespace
}  // namespace aqlm
