// The daemon's HTTP API (docs/daemon.md) over libcurl: submit a job, poll it, fetch frames, cancel.
// Every call is one short request with a time-out, so the render loop can check the host's abort
// between calls. Nothing here throws.
#pragma once

#include <string>
#include <vector>

#include "json.h"

namespace latentween {

struct Reply {
  enum class Kind { Ok, Unreachable, Refused, Malformed };
  Kind kind = Kind::Ok;
  long status = 0;
  std::string body;
  std::string message;  // one line for the user when kind != Ok
  Json json;            // the parsed body of a JSON answer

  bool ok() const { return kind == Kind::Ok; }
};

// curl_global_init/cleanup: not thread-safe, so called from the plug-in's Load and Unload actions.
void http_global_init();
void http_global_cleanup();

class DaemonClient {
 public:
  DaemonClient(std::string url, std::string token);

  const std::string& url() const { return url_; }

  // POST /v1/jobs: both keyframes as PNG uploads, `settings_json` a MorphSettings object.
  Reply submit(const std::vector<unsigned char>& from_png, const std::vector<unsigned char>& to_png,
               const std::string& settings_json) const;
  Reply job(const std::string& id) const;                       // GET /v1/jobs/{id}
  Reply frame(const std::string& id, int index) const;          // GET /v1/jobs/{id}/frames/{index}: PNG
  Reply cancel(const std::string& id) const;                    // POST /v1/jobs/{id}/cancel

  // Job ids come from the daemon, but they go into URLs: only plain ids are accepted.
  static bool plain_id(const std::string& id);

 private:
  // `prepared`: a CURL handle that already carries a request body, or null for a fresh one.
  Reply request(const std::string& method, const std::string& path, void* prepared, long timeout_ms,
                bool expect_json) const;

  std::string url_;
  std::string token_;
};

}  // namespace latentween
