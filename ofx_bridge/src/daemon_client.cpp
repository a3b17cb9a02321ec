#include "daemon_client.h"

#include <curl/curl.h>

#include <utility>

namespace latentween {
namespace {

constexpr long kConnectTimeoutMs = 3000;
constexpr long kShortTimeoutMs = 15000;
constexpr long kUploadTimeoutMs = 120000;  // two large keyframes over a slow link
constexpr long kFrameTimeoutMs = 120000;

size_t collect(char* data, size_t size, size_t count, void* sink) {
  static_cast<std::string*>(sink)->append(data, size * count);
  return size * count;
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

DaemonClient::DaemonClient(std::string url, std::string token) : url_(std::move(url)) {
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
  return request("POST", "/v1/jobs", easy.handle, kUploadTimeoutMs, true);
}

Reply DaemonClient::job(const std::string& id) const {
  if (!plain_id(id)) return Reply{Reply::Kind::Malformed, 0, "", "the daemon gave an unusable job id", Json()};
  return request("GET", "/v1/jobs/" + id, nullptr, kShortTimeoutMs, true);
}

Reply DaemonClient::frame(const std::string& id, int index) const {
  if (!plain_id(id)) return Reply{Reply::Kind::Malformed, 0, "", "the daemon gave an unusable job id", Json()};
  return request("GET", "/v1/jobs/" + id + "/frames/" + std::to_string(index), nullptr, kFrameTimeoutMs, false);
}

Reply DaemonClient::cancel(const std::string& id) const {
  if (!plain_id(id)) return Reply{Reply::Kind::Malformed, 0, "", "the daemon gave an unusable job id", Json()};
  return request("POST", "/v1/jobs/" + id + "/cancel", nullptr, kShortTimeoutMs, true);
}

Reply DaemonClient::request(const std::string& method, const std::string& path, void* prepared, long timeout_ms,
                            bool expect_json) const {
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
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "latentween-ofx/0.1");
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, detail);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
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
