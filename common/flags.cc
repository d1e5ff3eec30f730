#include "common/flags.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace fetchfleet {

FlagSet::FlagSet(std::string usage, std::string env_prefix)
    : usage_(std::move(usage)), env_prefix_(std::move(env_prefix)) {}

void FlagSet::Add(Flag flag) { flags_.push_back(std::move(flag)); }

FlagSet::Flag* FlagSet::Find(absl::string_view name) {
  for (Flag& flag : flags_) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

void FlagSet::String(std::string name, std::string* value, std::string help) {
  Add({name, std::move(help), *value, false, false,
       [value](absl::string_view text) {
         *value = std::string(text);
         return absl::OkStatus();
       },
       nullptr});
}

void FlagSet::Int(std::string name, int64_t* value, std::string help) {
  Add({name, std::move(help), absl::StrCat(*value), false, false,
       [value, name](absl::string_view text) {
         if (!absl::SimpleAtoi(text, value)) {
           return absl::InvalidArgumentError(absl::StrCat(
               "--", name, ": \"", text, "\" is not a whole number"));
         }
         return absl::OkStatus();
       },
       nullptr});
}

void FlagSet::Double(std::string name, double* value, std::string help) {
  Add({name, std::move(help), absl::StrCat(*value), false, false,
       [value, name](absl::string_view text) {
         double parsed;
         // SimpleAtod reads "nan" and "inf"; no flag means either.
         if (!absl::SimpleAtod(text, &parsed) || !std::isfinite(parsed)) {
           return absl::InvalidArgumentError(
               absl::StrCat("--", name, ": \"", text, "\" is not a number"));
         }
         *value = parsed;
         return absl::OkStatus();
       },
       nullptr});
}

void FlagSet::Bool(std::string name, bool* value, std::string help) {
  Add({name, std::move(help), *value ? "true" : "false", true, false,
       [value, name](absl::string_view text) {
         if (!absl::SimpleAtob(text, value)) {
           return absl::InvalidArgumentError(absl::StrCat(
               "--", name, ": \"", text, "\" is not true or false"));
         }
         return absl::OkStatus();
       },
       nullptr});
}

void FlagSet::Duration(std::string name, absl::Duration* value,
                       std::string help) {
  Add({name, std::move(help), absl::FormatDuration(*value), false, false,
       [value, name](absl::string_view text) {
         absl::Duration parsed;
         if (!absl::ParseDuration(text, &parsed) ||
             parsed < absl::ZeroDuration()) {
           return absl::InvalidArgumentError(
               absl::StrCat("--", name, ": \"", text,
                            "\" is not a duration (like 10s, 500ms, 2m)"));
         }
         *value = parsed;
         return absl::OkStatus();
       },
       nullptr});
}

void FlagSet::StringList(std::string name, std::vector<std::string>* values,
                         std::string help) {
  Add({name, std::move(help), absl::StrJoin(*values, ","), false, true,
       [values](absl::string_view text) {
         values->push_back(std::string(text));
         return absl::OkStatus();
       },
       [values] { values->clear(); }});
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(int argc, char** argv,
                                                        int first) {
  if (!env_prefix_.empty()) {
    for (Flag& flag : flags_) {
      std::string env_name =
          env_prefix_ +
          absl::AsciiStrToUpper(absl::StrReplaceAll(flag.name, {{"-", "_"}}));
      const char* env = std::getenv(env_name.c_str());
      if (env == nullptr || *env == '\0') continue;
      if (flag.repeatable) {
        for (absl::string_view part :
             absl::StrSplit(env, ',', absl::SkipWhitespace())) {
          RETURN_IF_ERROR(flag.set(absl::StripAsciiWhitespace(part)));
        }
      } else {
        absl::Status status = flag.set(env);
        if (!status.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat(env_name, ": ", status.message()));
        }
      }
    }
  }
  // A repeatable flag given on the command line replaces what the environment
  // said.
  std::vector<Flag*> cleared;
  std::vector<std::string> positional;
  bool only_positional = false;
  for (int i = first; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (only_positional || arg.size() < 2 || arg[0] != '-' || arg == "-") {
      positional.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") return absl::NotFoundError(Usage());
    absl::string_view body = arg.substr(arg[1] == '-' ? 2 : 1);
    absl::string_view name = body;
    std::string value;
    bool has_value = false;
    if (size_t eq = body.find('='); eq != absl::string_view::npos) {
      name = body.substr(0, eq);
      value = std::string(body.substr(eq + 1));
      has_value = true;
    }
    Flag* flag = Find(name);
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (!has_value) {
      if (flag->is_bool) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " needs a value"));
      }
    }
    if (flag->repeatable &&
        std::find(cleared.begin(), cleared.end(), flag) == cleared.end()) {
      cleared.push_back(flag);
      flag->clear();
    }
    RETURN_IF_ERROR(flag->set(value));
  }
  return positional;
}

std::string FlagSet::Usage() const {
  std::string out = usage_;
  absl::StrAppend(&out, "\n\nFlags:\n");
  for (const Flag& flag : flags_) {
    absl::StrAppend(&out, "  --", flag.name, flag.is_bool ? "" : " VALUE",
                    "\n      ", flag.help);
    if (!flag.default_text.empty())
      absl::StrAppend(&out, " (default ", flag.default_text, ")");
    if (!env_prefix_.empty()) {
      absl::StrAppend(
          &out, " [env ", env_prefix_,
          absl::AsciiStrToUpper(absl::StrReplaceAll(flag.name, {{"-", "_"}})),
          "]");
    }
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace fetchfleet
