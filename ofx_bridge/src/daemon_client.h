// The daemon's HTTP API (docs/daemon.md) over libcurl: submit a job, poll it, fetch frames, cancel.
// Every call is one short request: a daemon that accepts a connection and then says nothing is given
// up on after a few seconds, and a render's abort is honoured during a transfer, not only between
// calls. Answers are size-capped. Nothing here throws, and no exception can unwind through libcurl.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "json.h"

namespace latentween {

struct Reply {
  // Unreachable: no connection, or no answer in time. Aborted: the host's abort stopped it.
  enum class Kind { Ok, Unreachable, Refused, Malformed, Aborted };
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

// Asked by libcurl while a transfer runs (on the calling thread); true stops the transfer.
using AbortCheck = std::function<bool()>;

class DaemonClient {
 public:
  DaemonClient(std::string url, std::string token, AbortCheck abort = nullptr);

  const std::string& url() const { return url_; }

  // POST /v1/jobs: both keyframes as PNG uploads, `settings_json` a MorphSettings object.
  Reply submit(const std::vector<unsigned char>& from_png, const std::vector<unsigned char>& to_png,
               const std::string& settings_json) const;
  Reply job(const std::string& id) const;                       // GET /v1/jobs/{id}
  // GET /v1/jobs/{id}/frames/{index}: a PNG of at most `max_bytes`.
  Reply frame(const std::string& id, int index, size_t max_bytes) const;
  Reply cancel(const std::string& id) const;                    // POST /v1/jobs/{id}/cancel

  // Job ids come from the daemon, but they go into URLs: only plain ids are accepted.
  static bool plain_id(const std::string& id);

 private:
  // `prepared`: a CURL handle that already carries a request body, or null for a fresh one.
  Reply request(const std::string& method, const std::string& path, void* prepared, long timeout_ms,
                size_t max_bytes, bool expect_json) const;

  std::string url_;
  std::string token_;
  AbortCheck abort_;
};

}  // namespace latentween
