// Reads frames of a camera with libcamhub from two threads: the C++ example.
//
//     c++ -std=c++17 read.cpp -I../include -L<dir of libcamhub.so> -lcamhub -pthread -o read_cpp
//     ./read_cpp rtsp://192.168.1.20/stream1 [frames]
//
// A small RAII wrapper owns the reader and the frames; both threads read the one reader (it is
// thread-safe) and each gets the newest frame.
#include <cstdio>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "camhub.h"

namespace {

struct Error : std::runtime_error {
    camhub_status status;
    Error(camhub_status s, const std::string &what)
        : std::runtime_error(what + ": " + camhub_last_error()), status(s) {}
};

struct FrameFree {
    void operator()(camhub_frame *f) const { camhub_frame_free(f); }
};
using Frame = std::unique_ptr<camhub_frame, FrameFree>;

class Camera {
  public:
    explicit Camera(const std::string &url) {
        camhub_status s = camhub_open(url.c_str(), nullptr, 10000, &reader_);
        if (s != CAMHUB_OK) throw Error(s, "open");
    }
    ~Camera() { camhub_close(reader_); }
    Camera(const Camera &) = delete;
    Camera &operator=(const Camera &) = delete;

    Frame read(uint32_t width, camhub_format format, int timeout_ms = 5000) const {
        camhub_frame *f = nullptr;
        camhub_status s = camhub_read(reader_, width, 0, format, timeout_ms, &f);
        if (s != CAMHUB_OK) throw Error(s, "read");
        return Frame(f);
    }

    // Into a std::vector, grown when the frame is larger than it.
    camhub_frame_info read_into(std::vector<uint8_t> &buf, uint32_t width, camhub_format format) const {
        camhub_frame_info info{};
        camhub_status s = camhub_read_into(reader_, width, 0, format, 5000, buf.data(), buf.size(), &info);
        if (s == CAMHUB_ERR_BUFFER_TOO_SMALL) {
            buf.resize(info.size);
            s = camhub_read_into(reader_, width, 0, format, 5000, buf.data(), buf.size(), &info);
        }
        if (s != CAMHUB_OK) throw Error(s, "read_into");
        return info;
    }

  private:
    camhub_reader *reader_ = nullptr;
};

}  // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s CAMERA-URL [frames]\n", argv[0]);
        return 2;
    }
    int frames = argc > 2 ? std::atoi(argv[2]) : 10;
    try {
        Camera cam(argv[1]);
        std::mutex out;
        auto work = [&](int thread) {
            for (int i = 0; i < frames; i++) {
                Frame f = cam.read(320, CAMHUB_FORMAT_RGB);
                const uint8_t *px = f->data + size_t(f->info.height * 7 / 8) * f->info.stride +
                                    size_t(f->info.width / 4) * 3;
                std::lock_guard<std::mutex> lock(out);
                std::printf("thread %d frame seq=%llu size=%ux%u white=%u,%u,%u\n", thread,
                            (unsigned long long)f->info.seq, f->info.width, f->info.height, px[0],
                            px[1], px[2]);
            }
        };
        std::thread a(work, 1), b(work, 2);
        a.join();
        b.join();
        std::vector<uint8_t> buf;  // empty: the first read says how large it must be
        camhub_frame_info info = cam.read_into(buf, 64, CAMHUB_FORMAT_YUV420);
        std::printf("yuv420 size=%ux%u bytes=%zu\n", info.width, info.height, info.size);
    } catch (const Error &e) {
        std::fprintf(stderr, "%s (status %d)\n", e.what(), int(e.status));
        return 1;
    }
    return 0;
}
