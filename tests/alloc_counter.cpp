// Replaces the global operator new of the test binary to count heap allocations, so that tests
// can prove that a code path allocates nothing. Kept in its own translation unit: inlined into
// callers, GCC's -Wmismatched-new-delete cannot see that new and delete match here.
#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<long long> g_allocations{0};
std::atomic<long long> g_fail_at{-1};  // allocation number that throws; -1: none

void* counted_malloc(std::size_t n) {
  const long long k = g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (k == g_fail_at.load(std::memory_order_relaxed)) {
    g_fail_at.store(-1, std::memory_order_relaxed);
    throw std::bad_alloc();
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
}  // namespace

long long allocation_count() {
  return g_allocations.load(std::memory_order_relaxed);
}

void fail_allocation(long long nth) {
  g_fail_at.store(nth < 0 ? -1 : g_allocations.load(std::memory_order_relaxed) + nth,
                  std::memory_order_relaxed);
}

void* operator new(std::size_t n) {
  return counted_malloc(n);
}
void* operator new[](std::size_t n) {
  return counted_malloc(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
