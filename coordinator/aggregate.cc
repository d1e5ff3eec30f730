#include "coordinator/aggregate.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "common/json_limits.h"
#include "common/request_parser.h"
#include "common/result_json.h"
#include "common/wire_limits.h"
#include "nlohmann/json.hpp"

namespace fetchfleet::coordinator {
namespace {

// Ordered: the merged document lists parts in the caller's order.
using Json = nlohmann::ordered_json;

constexpr size_t kMaxNameBytes = 128;

absl::Status PartError(size_t i, const std::string& name,
                       absl::string_view message) {
  return absl::InvalidArgumentError(
      name.empty() ? absl::StrCat("parts[", i, "]: ", message)
                   : absl::StrCat("part \"", name, "\": ", message));
}

}  // namespace

absl::StatusOr<AggregatePlan> ParseAggregate(absl::string_view json) {
  if (json.size() > kMaxLineBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the document is ", json.size(), " bytes; the limit is ",
                     kMaxLineBytes));
  }
  if (absl::Status shape = CheckJsonShape(json, kMaxLineBytes); !shape.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the document is refused: ", shape.message()));
  }
  Json doc = Json::parse(json.begin(), json.end(), nullptr,
                         /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object())
    return absl::InvalidArgumentError("the document is not a JSON object");
  AggregatePlan plan;
  int64_t deadline_ms = kDefaultAggregateDeadlineMs;
  for (auto& [key, value] : doc.items()) {
    if (key == "deadline_ms") {
      if (!value.is_number_integer() || value.get<int64_t>() < 1 ||
          value.get<int64_t>() > kMaxTimeoutMs) {
        return absl::InvalidArgumentError(
            absl::StrCat("\"deadline_ms\" must be a whole number from 1 to ",
                         kMaxTimeoutMs));
      }
      deadline_ms = value.get<int64_t>();
    } else if (key != "parts") {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown field \"", key,
                       "\" (expected \"parts\" and \"deadline_ms\")"));
    }
  }
  plan.deadline = absl::Milliseconds(deadline_ms);
  auto parts = doc.find("parts");
  if (parts == doc.end() || !parts->is_array() || parts->empty())
    return absl::InvalidArgumentError("\"parts\" must be a non-empty array");
  if (parts->size() > kMaxAggregateParts) {
    return absl::InvalidArgumentError(absl::StrCat(
        "at most ", kMaxAggregateParts, " parts, not ", parts->size()));
  }
  std::set<std::string> names;
  for (size_t i = 0; i < parts->size(); ++i) {
    // A copy, to erase what is not a request field; the depth check above
    // keeps copying and dumping it shallow.
    Json part = (*parts)[i];
    if (!part.is_object()) return PartError(i, "", "must be an object");
    AggregatePart out;
    auto name = part.find("name");
    if (name == part.end() || !name->is_string() ||
        name->get<std::string>().empty() ||
        name->get<std::string>().size() > kMaxNameBytes) {
      return PartError(i, "",
                       absl::StrCat("\"name\" must be a string of 1 to ",
                                    kMaxNameBytes, " bytes"));
    }
    out.name = name->get<std::string>();
    if (out.name == "degraded" || out.name == "errors" || out.name == "error")
      return PartError(i, out.name, "that name is reserved");
    if (!names.insert(out.name).second)
      return PartError(i, out.name, "the name is used twice");
    part.erase("name");
    if (auto required = part.find("required"); required != part.end()) {
      if (!required->is_boolean())
        return PartError(i, out.name, "\"required\" must be true or false");
      out.required = required->get<bool>();
      part.erase("required");
    }
    if (auto fallback = part.find("fallback"); fallback != part.end()) {
      out.fallback = fallback->dump();
      part.erase("fallback");
    }
    if (part.contains("id"))
      return PartError(i, out.name, "a part is named, not given an id");
    absl::StatusOr<v1::FetchRequest> request = ParseRequestObject(part.dump());
    if (!request.ok())
      return PartError(i, out.name, request.status().message());
    out.request = *std::move(request);
    out.request.set_index(i);
    out.request.set_id(out.name);
    // Every attempt ends by the call's deadline.
    uint32_t deadline_u = static_cast<uint32_t>(deadline_ms);
    if (out.request.timeout_ms() == 0 || out.request.timeout_ms() > deadline_u)
      out.request.set_timeout_ms(deadline_u);
    if (out.request.max_attempts() == 0)
      out.request.set_max_attempts(kDefaultPartAttempts);
    plan.parts.push_back(std::move(out));
  }
  return plan;
}

v1::AggregateResponse MergeAggregate(const AggregatePlan& plan,
                                     const std::vector<PartOutcome>& outcomes,
                                     absl::Duration elapsed) {
  v1::AggregateResponse response;
  response.set_latency_ms(absl::ToDoubleMilliseconds(elapsed));
  Json merged = Json::object();
  Json degraded = Json::array();
  Json errors = Json::object();
  std::string failed_required;
  for (size_t i = 0; i < plan.parts.size(); ++i) {
    const AggregatePart& part = plan.parts[i];
    const PartOutcome& outcome = outcomes[i];
    v1::AggregatePartResult* out = response.add_parts();
    out->set_name(part.name);
    out->set_required(part.required);
    out->set_latency_ms(absl::ToDoubleMilliseconds(outcome.at));
    Json body;
    if (!outcome.result) {
      out->set_error("timeout");
      out->set_error_message(absl::StrCat("no answer within the call's ",
                                          absl::FormatDuration(plan.deadline),
                                          " deadline"));
    } else {
      const v1::FetchResult& r = *outcome.result;
      out->set_status(r.status());
      out->set_worker(r.worker());
      if (!r.ok()) {
        out->set_error(ErrorKindName(r.error()));
        out->set_error_message(r.error_message());
      } else {
        // An empty body (204) stands for null. An upstream's body is as
        // hostile as a client's document: the same depth bound before parsing.
        absl::Status shape = CheckJsonShape(r.body(), kMaxBodyCapBytes);
        if (!shape.ok()) {
          body = Json(Json::value_t::discarded);
        } else {
          body = r.body().empty() ? Json(nullptr)
                                  : Json::parse(r.body(), nullptr,
                                                /*allow_exceptions=*/false);
        }
        if (r.truncated() || body.is_discarded()) {
          out->set_error("invalid_json");
          out->set_error_message(
              r.truncated() ? "the body was cut at the size cap"
              : !shape.ok()
                  ? absl::StrCat("the body is refused: ", shape.message())
                  : "the body is not valid JSON");
        } else {
          out->set_ok(true);
        }
      }
    }
    if (out->ok()) {
      merged[part.name] = std::move(body);
      continue;
    }
    errors[part.name] = out->error();
    if (part.required) {
      if (failed_required.empty()) failed_required = part.name;
      continue;
    }
    out->set_degraded(true);
    degraded.push_back(part.name);
    merged[part.name] = Json::parse(part.fallback);
  }
  Json document;
  if (!failed_required.empty()) {
    document["error"] =
        absl::StrCat("required part \"", failed_required,
                     "\" failed: ", errors[failed_required].get<std::string>());
    document["errors"] = std::move(errors);
    document["degraded"] = std::move(degraded);
  } else {
    response.set_ok(true);
    document = std::move(merged);
    document["degraded"] = std::move(degraded);
    document["errors"] = std::move(errors);
  }
  // Bodies may hold invalid UTF-8 inside JSON strings; replace, never throw.
  response.set_document(
      document.dump(-1, ' ', false, Json::error_handler_t::replace));
  return response;
}

}  // namespace fetchfleet::coordinator
