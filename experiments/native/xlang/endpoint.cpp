// The C++ endpoint of the cross-language ring experiment (xlang.h has the protocol):
//   endpoint_cpp SHM ROLE ITERS WARMUP SIZE
// Built with `zig c++` (C++20); calls guests/lib/ring.c through its C ABI, as a C++
// program would use a C IPC library. Prints one JSON object with its samples.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

extern "C" {
#include <keusim/cpu.h>
#include <keusim/ring.h>
}
#include "xlang.h"

namespace {

std::uint64_t now_ns()
{
    // steady_clock is CLOCK_MONOTONIC on Linux (libc++), the clock every endpoint reads.
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::steady_clock::now().time_since_epoch()).count());
}

// The shared file, mapped for the lifetime of the object.
class Shared {
public:
    explicit Shared(const char *path)
    {
        int fd = ::open(path, O_RDWR);
        if (fd < 0)
            throw std::runtime_error("cannot open the shared file");
        void *p = ::mmap(nullptr, XL_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ::close(fd);
        if (p == MAP_FAILED)
            throw std::runtime_error("mmap");
        base_ = static_cast<std::uint8_t *>(p);
    }
    ~Shared() { ::munmap(base_, XL_FILE_SIZE); }
    Shared(const Shared &) = delete;
    Shared &operator=(const Shared &) = delete;

    ring_ep ring(unsigned r) const
    {
        std::uint8_t *p = base_ + XL_RING_OFF(r);
        ring_ep ep{};
        if (ring_init(&ep, reinterpret_cast<volatile std::uint32_t *>(p),
                      reinterpret_cast<volatile std::uint32_t *>(p + XL_PAGE), p + 2 * XL_PAGE,
                      XL_CAPACITY) != 0)
            throw std::runtime_error("ring_init");
        return ep;
    }
    std::atomic_ref<std::uint32_t> ready(int role) const
    {
        return std::atomic_ref<std::uint32_t>(
            *reinterpret_cast<std::uint32_t *>(base_ + XL_READY_OFF(role)));
    }

private:
    std::uint8_t *base_ = nullptr;
};

bool check(const std::vector<std::uint64_t> &msg, std::uint64_t seq)
{
    bool ok = msg[0] == seq;
    for (std::size_t k = 2; k < msg.size(); k++)
        ok &= msg[k] == xl_word(seq << 16 | k);
    return ok;
}

std::string samples(const char *name, const std::vector<std::uint64_t> &v)
{
    std::string s = std::string("\"") + name + "\": [";
    for (std::size_t i = 0; i < v.size(); i++)
        s += (i ? "," : "") + std::to_string(v[i]);
    return s + "]";
}

int run(int argc, char **argv)
{
    if (argc != 6)
        throw std::runtime_error("usage: endpoint_cpp SHM ROLE ITERS WARMUP SIZE");
    const int role = std::atoi(argv[2]);
    const long iters = std::atol(argv[3]), warmup = std::atol(argv[4]);
    const std::uint32_t size = static_cast<std::uint32_t>(std::atoi(argv[5]));
    if ((role != 0 && role != 1) || iters < 1 || warmup < 0 || size < 16 || size % 8 ||
        size > 4096)
        throw std::runtime_error("bad arguments");
    Shared shm(argv[1]);
    ring_ep tx = shm.ring(static_cast<unsigned>(role)), rx = shm.ring(static_cast<unsigned>(1 - role));
    std::vector<std::uint64_t> msg(size / 8), in(size / 8), rt, ow;
    rt.reserve(static_cast<std::size_t>(iters));
    ow.reserve(static_cast<std::size_t>(iters));
    long good = 0, bad = 0;
    const long total = warmup + iters;

    shm.ready(role).store(1, std::memory_order_release);
    while (!shm.ready(1 - role).load(std::memory_order_acquire))
        cpu_relax();
    for (long i = 0; i < total; i++) {
        std::uint32_t n = 0;
        const auto seq = static_cast<std::uint64_t>(i);
        if (role == 0) {
            msg[0] = seq;
            for (std::size_t k = 2; k < msg.size(); k++)
                msg[k] = xl_word(seq << 16 | k);
            const std::uint64_t t0 = now_ns();
            msg[1] = t0;
            if (ring_send_wait(&tx, msg.data(), size) != 0 ||
                ring_recv_wait(&rx, in.data(), size, &n) != 0)
                throw std::runtime_error("ring error");
            const std::uint64_t t1 = now_ns();
            if (i >= warmup) {
                rt.push_back(t1 - t0);
                ow.push_back(t1 - in[1]);
            }
        } else {
            if (ring_recv_wait(&rx, in.data(), size, &n) != 0)
                throw std::runtime_error("ring error");
            const std::uint64_t t1 = now_ns();
            if (i >= warmup)
                ow.push_back(t1 - in[1]);
            in[1] = now_ns();
            if (ring_send_wait(&tx, in.data(), size) != 0)
                throw std::runtime_error("ring error");
        }
        (n == size && check(in, seq) ? good : bad)++;
    }
    std::printf("{\"lang\": \"cpp\", \"role\": %d, \"msgs\": %ld, \"verified_bytes\": %ld, "
                "\"mismatches\": %ld, %s, %s}\n", role, total, good * static_cast<long>(size),
                bad, samples("rt_ns", rt).c_str(), samples("oneway_ns", ow).c_str());
    return bad ? 1 : 0;
}

}  // namespace

int main(int argc, char **argv)
{
    try {
        return run(argc, argv);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "endpoint_cpp: %s\n", e.what());
        return 2;
    }
}
