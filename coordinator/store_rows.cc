#include "coordinator/store_rows.h"

#include "google/protobuf/io/coded_stream.h"

namespace fetchfleet::coordinator {
namespace {

using google::protobuf::MessageLite;
using google::protobuf::io::CodedInputStream;
using google::protobuf::io::CodedOutputStream;

void AppendVarint(uint64_t value, std::string* row) {
  uint8_t buffer[10];
  uint8_t* end = CodedOutputStream::WriteVarint64ToArray(value, buffer);
  row->append(reinterpret_cast<const char*>(buffer), end - buffer);
}

// AppendMessage appends size and bytes, serialized in place.
void AppendMessage(const MessageLite& message, std::string* row) {
  size_t size = message.ByteSizeLong();
  AppendVarint(size, row);
  size_t at = row->size();
  row->resize(at + size);
  message.SerializeWithCachedSizesToArray(
      reinterpret_cast<uint8_t*>(row->data() + at));
}

bool ReadMessage(CodedInputStream* in, MessageLite* message) {
  uint32_t size = 0;
  if (!in->ReadVarint32(&size)) return false;
  CodedInputStream::Limit limit = in->PushLimit(static_cast<int>(size));
  bool ok = message->ParseFromCodedStream(in) && in->ConsumedEntireMessage() &&
            in->BytesUntilLimit() == 0;
  in->PopLimit(limit);
  return ok;
}

const uint8_t* Bytes(const std::string& row) {
  return reinterpret_cast<const uint8_t*>(row.data());
}

}  // namespace

void AppendLine(const SpooledLine& line, std::string* row) {
  AppendVarint(line.index, row);
  row->push_back(line.is_error ? 1 : 0);
  if (line.is_error) {
    AppendMessage(line.error, row);
  } else {
    AppendMessage(line.request, row);
  }
}

bool DecodeLines(const std::string& row,
                 absl::FunctionRef<void(SpooledLine)> line) {
  CodedInputStream in(Bytes(row), static_cast<int>(row.size()));
  while (!in.ExpectAtEnd()) {
    SpooledLine decoded;
    uint8_t is_error = 0;
    if (!in.ReadVarint64(&decoded.index) || !in.ReadRaw(&is_error, 1) ||
        is_error > 1)
      return false;
    decoded.is_error = is_error == 1;
    if (!ReadMessage(&in, decoded.is_error
                              ? static_cast<MessageLite*>(&decoded.error)
                              : static_cast<MessageLite*>(&decoded.request)))
      return false;
    line(std::move(decoded));
  }
  return true;
}

void AppendResult(const v1::FetchResult& result, std::string* row) {
  AppendMessage(result, row);
}

bool DecodeResults(const std::string& row,
                   std::vector<v1::FetchResult>* results) {
  CodedInputStream in(Bytes(row), static_cast<int>(row.size()));
  while (!in.ExpectAtEnd()) {
    v1::FetchResult result;
    if (!ReadMessage(&in, &result)) return false;
    results->push_back(std::move(result));
  }
  return true;
}

size_t CountBits(const std::string& bits, size_t n) {
  size_t count = 0;
  for (size_t i = 0; i < n; ++i) count += BitIsSet(bits, i) ? 1 : 0;
  return count;
}

}  // namespace fetchfleet::coordinator
