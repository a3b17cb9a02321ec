#include "daemon_client.h"

#include <curl/curl.h>

#include <chrono>
#include <utility>

namespace latentween {
namespace {

// A daemon on this machine or the studio's network connects at once and answers a poll in
// milliseconds; one that has not within these is treated as down (and not asked again for a while,
// see FrameCache::mark_unreachable), so a hung daemon costs one render a few seconds, not each 15 s.
constexpr long kConnectTimeoutMs = 2000;
constexpr long kStallSeconds = 5;          // no byte either way for this long: give up
constexpr long kShortTimeoutMs = 5000;     // a poll or a cancel, start to end
constexpr long kUploadTimeoutMs = 120000;  // two large keyframes over a slow link, if bytes keep flowing
constexpr long kFrameTimeoutMs = 120000;
constexpr size_t kMaxJsonBytes = 1 << 20;  // a job's JSON is a few kB

// Where libcurl writes an answer. Callbacks run inside libcurl's C frames: they must not throw.
struct Sink {
  std::string* body;
  size_t limit;
  bool too_large = false;
};

size_t collect(char* data, size_t size, size_t count, void* target) noexcept {
  auto* sink = static_cast<Sink*>(target);
  const size_t bytes = size * count;
  // CURLOPT_MAXFILESIZE only sees a declared Content-Length; a chunked answer is capped here.
  if (sink->body->size() + bytes > sink->limit) {
    sink->too_large = true;
    return 0;
  }
  try {
    sink->body->append(data, bytes);
  } catch (...) {
    return 0;  // out of memory: libcurl ends the transfer with a write error
  }
  return bytes;
}

// Watches a transfer from libcurl's progress callback: the host's abort, and silence. libcurl's own
// low-speed limit averages over its window, so a daemon that took an upload and then said nothing
// was only given up on after two windows; here it is the time since the last byte either way.
struct Watch {
  const AbortCheck* abort;
  std::chrono::steady_clock::time_point last_byte = std::chrono::steady_clock::now();
  curl_off_t seen = 0;
  bool aborted = false;
  bool silent = false;
};

int on_progress(void* target, curl_off_t, curl_off_t down, curl_off_t, curl_off_t up) noexcept {
  auto* watch = static_cast<Watch*>(target);
  try {
    if (*watch->abort && (*watch->abort)()) {
      watch->aborted = true;
      return 1;
    }
  } catch (...) {
    watch->aborted = true;
    return 1;
  }
  const auto now = std::chrono::steady_clock::now();
  if (down + up != watch->seen) {
    watch->seen = down + up;
    watch->last_byte = now;
  } else if (now - watch->last_byte > std::chrono::seconds(kStallSeconds)) {
    watch->silent = true;
    return 1;
  }
  return 0;
}

bool loopback(const std::string& url) {
  for (const char* name : {"://127.0.0.1", "://localhost", "://[::1]"}) {
    if (url.find(name) != std::string::npos) return true;
  }
  return false;
}

std::string curl_reason(CURLcode code, const char* detail) {
  std::string reason = detail && detail[0] ? detail : curl_easy_strerror(code);
  while (!reason.empty() && (reason.back() == '\n' || reason.back() == '\r')) reason.pop_back();
  return reason;
}

struct Easy {
  CURL* handle;
  explicit Easy(bool create = true) : handle(create ? curl_easy_init() : nullptr) {}
  ~Easy() {
    if (handle) curl_easy_cleanup(handle);
  }
  Easy(const Easy&) = delete;
  Easy& operator=(const Easy&) = delete;
};

struct Mime {
  curl_mime* handle;
  explicit Mime(CURL* easy) : handle(curl_mime_init(easy)) {}
  ~Mime() { curl_mime_free(handle); }
  Mime(const Mime&) = delete;
  Mime& operator=(const Mime&) = delete;
  void add(const char* name, const void* data, size_t size, const char* filename, const char* type) {
    curl_mimepart* part = curl_mime_addpart(handle);
    curl_mime_name(part, name);
    curl_mime_data(part, static_cast<const char*>(data), size);
    if (filename) curl_mime_filename(part, filename);
    curl_mime_type(part, type);
  }
};

}  // namespace

void http_global_init() { curl_global_init(CURL_GLOBAL_DEFAULT); }
void http_global_cleanup() { curl_global_cleanup(); }

DaemonClient::DaemonClient(std::string url, std::string token, AbortCheck abort)
    : url_(std::move(url)), abort_(std::move(abort)) {
  while (!url_.empty() && url_.back() == '/') url_.pop_back();
  // The token goes into a header line: a pasted newline must not end it early.
  for (char c : token) {
    if (static_cast<unsigned char>(c) >= 0x20) token_ += c;
  }
}

bool DaemonClient::plain_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!plain) return false;
  }
  return true;
}

Reply DaemonClient::submit(const std::vector<unsigned char>& from_png, const std::vector<unsigned char>& to_png,
                           const std::string& settings_json) const {
  Easy easy;
  if (!easy.handle) return Reply{Reply::Kind::Unreachable, 0, "", "libcurl could not start a request", Json()};
  Mime mime(easy.handle);
  mime.add("settings", settings_json.data(), settings_json.size(), nullptr, "application/json");
  mime.add("keyframes", from_png.data(), from_png.size(), "from.png", "image/png");
  mime.add("keyframes", to_png.data(), to_png.size(), "to.png", "image/png");
  curl_easy_setopt(easy.handle, CURLOPT_MIMEPOST, mime.handle);
  return request("POST", "/v1/jobs", easy.handle, kUploadTimeoutMs, kMaxJsonBytes, true);
}

Reply DaemonClient::job(const std::string& id) const {
  if (!plain_id(id)) return Reply{Reply::Kind::Malformed, 0, "", "the daemon gave an unusable job id", Json()};
  return request("GET", "/v1/jobs/" + id, nullptr, kShortTimeoutMs, kMaxJsonBytes, true);
}

Reply DaemonClient::frame(const std::string& id, int index, size_t max_bytes) const {
  if (!plain_id(id)) return Reply{Reply::Kind::Malformed, 0, "", "the daemon gave an unusable job id", Json()};
  return request("GET", "/v1/jobs/" + id + "/frames/" + std::to_string(index), nullptr, kFrameTimeoutMs, max_bytes,
                 false);
}

Reply DaemonClient::cancel(const std::string& id) const {
  if (!plain_id(id)) return Reply{Reply::Kind::Malformed, 0, "", "the daemon gave an unusable job id", Json()};
  return request("POST", "/v1/jobs/" + id + "/cancel", nullptr, kShortTimeoutMs, kMaxJsonBytes, true);
}

Reply DaemonClient::request(const std::string& method, const std::string& path, void* prepared, long timeout_ms,
                            size_t max_bytes, bool expect_json) const {
  // A multipart submit arrives with a handle already carrying its body; other calls get a fresh one.
  Easy own(prepared == nullptr);
  CURL* curl = prepared ? static_cast<CURL*>(prepared) : own.handle;
  if (!curl) return Reply{Reply::Kind::Unreachable, 0, "", "libcurl could not start a request", Json()};

  Reply reply;
  std::string target = url_ + path;
  char detail[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = nullptr;
  if (!token_.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + token_).c_str());
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip on uploads
  curl_easy_setopt(curl, CURLOPT_URL, target.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // hosts render on many threads; no SIGALRM
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, kConnectTimeoutMs);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);  // a backstop to the Watch below
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 2 * kStallSeconds);
  curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_bytes));
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "latentween-ofx/0.1");
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, detail);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  Sink sink{&reply.body, max_bytes};
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  // libcurl calls this at least once a second, also while it waits for an answer.
  Watch watch{&abort_};
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &watch);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  // The URL is a user's text field: only HTTP(S), never file:// or other schemes curl knows.
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  // A proxy from the environment must not capture requests to this very machine.
  if (loopback(url_)) curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  if (method == "POST" && !prepared) {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
  }

  CURLcode code = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  if (code == CURLE_ABORTED_BY_CALLBACK && watch.aborted) {
    reply.kind = Reply::Kind::Aborted;
    reply.message = "the render was aborted";
    return reply;
  }
  if (code == CURLE_ABORTED_BY_CALLBACK) {  // silent
    reply.kind = Reply::Kind::Unreachable;
    reply.message = "cannot reach the latentween daemon at " + url_ + ": it took " + method + " " + path +
                    " and then said nothing for " + std::to_string(kStallSeconds) + " s";
    return reply;
  }
  if (code == CURLE_FILESIZE_EXCEEDED || sink.too_large) {
    reply.kind = Reply::Kind::Malformed;
    reply.message = "the daemon's answer to " + method + " " + path + " is larger than " +
                    std::to_string(max_bytes >> 20) + " MB";
    return reply;
  }
  if (code != CURLE_OK) {
    reply.kind = Reply::Kind::Unreachable;
    reply.message = "cannot reach the latentween daemon at " + url_ + ": " + curl_reason(code, detail);
    return reply;
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  bool parsed = false;
  if (expect_json || reply.status >= 400) reply.json = Json::parse(reply.body, &parsed);
  if (reply.status >= 400) {
    reply.kind = Reply::Kind::Refused;
    std::string why = parsed ? reply.json["detail"].str() : "";
    if (why.empty()) why = reply.body.substr(0, 200);
    reply.message = "the daemon refused " + method + " " + path + " (HTTP " + std::to_string(reply.status) + "): " + why;
  } else if (expect_json && !parsed) {
    reply.kind = Reply::Kind::Malformed;
    reply.message = "the daemon at " + url_ + " answered " + method + " " + path + " with something that is not JSON";
  }
  return reply;
}

}  // namespace latentween
