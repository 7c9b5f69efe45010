/// @file span.hpp
/// @brief Non-owning views over caller memory whose type says where the memory lives.
///
/// `host_span<T>` views host memory, `device_span<T>` views device (CUDA) memory. They do not
/// convert into each other, so handing host memory to the CUDA policy, or device memory to the
/// CPU policy, does not compile (tests/compile_fail checks this).
///
/// A `host_span` can be made from any contiguous container with `data()` and `size()`:
/// `std::vector`, `std::array`, Eigen vectors, `Eigen::Map` and `Eigen::Ref` with unit inner
/// stride, and Eigen matrices whose storage is contiguous. Strided Eigen objects are refused (at
/// compile time where the stride is a compile-time constant, else with shuffle_r1::error).
#pragma once

#include <shuffle_r1/config.hpp>
#include <shuffle_r1/error.hpp>

#include <cstddef>
#include <type_traits>
#include <utility>

namespace shuffle_r1 {

/// Where the memory behind a view lives.
enum class memory_space { host, device };

namespace detail {

template <class C, class = void>
struct has_data_size : std::false_type {};
template <class C>
struct has_data_size<
    C, std::void_t<decltype(std::declval<C&>().data()), decltype(std::declval<C&>().size())>>
    : std::is_pointer<decltype(std::declval<C&>().data())> {};

template <class C, class = void>
struct has_inner_stride : std::false_type {};
template <class C>
struct has_inner_stride<C, std::void_t<decltype(std::remove_cv_t<C>::InnerStrideAtCompileTime)>>
    : std::true_type {};

template <class C, class = void>
struct has_outer_stride : std::false_type {};
template <class C>
struct has_outer_stride<C, std::void_t<decltype(std::declval<C&>().outerStride()),
                                       decltype(std::declval<C&>().innerSize())>> : std::true_type {
};

/// Refuses strided Eigen objects: a span must cover exactly the object's elements.
template <class C>
void check_contiguous(C& c) {
  if constexpr (has_inner_stride<C>::value) {
    constexpr auto stride = std::remove_cv_t<C>::InnerStrideAtCompileTime;
    static_assert(stride == 1 || stride == -1 /* Eigen::Dynamic */,
                  "shuffle_r1: an Eigen object with a non-unit inner stride cannot be viewed as a "
                  "contiguous span");
    if (c.size() > 1 && c.innerStride() != 1)
      fail(errc::invalid_argument, "host_span", "Eigen object has inner stride ", c.innerStride(),
           "; a span needs contiguous elements");
  }
  if constexpr (has_outer_stride<C>::value) {
    if (c.size() > 0 && c.innerSize() != c.size() && c.outerStride() != c.innerSize())
      fail(errc::invalid_argument, "host_span", "Eigen object has outer stride ", c.outerStride(),
           " but inner size ", c.innerSize(), "; a span needs contiguous elements");
  }
}

}  // namespace detail

/// A pointer and a length, tagged with the memory space. Trivially copyable; never owns.
///
/// @tparam T element type (may be const)
/// @tparam Space where the memory lives
template <class T, memory_space Space>
class basic_span {
 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  using size_type = std::size_t;
  using pointer = T*;
  using reference = T&;
  using iterator = T*;
  static constexpr memory_space space = Space;

  /// An empty view.
  constexpr basic_span() noexcept = default;

  /// Views `size` elements starting at `data`. @pre `data` is valid for `size` elements or
  /// `size == 0`.
  SHUFFLE_R1_HD constexpr basic_span(T* data, size_type size) noexcept : data_(data), size_(size) {}

  /// Converts `span<U>` to `span<const U>` (or any qualification-only conversion), same space.
  template <class U, class = std::enable_if_t<!std::is_same_v<U, T> &&
                                              std::is_convertible_v<U (*)[], T (*)[]>>>  // NOLINT
  SHUFFLE_R1_HD constexpr basic_span(basic_span<U, Space> other) noexcept
      : data_(other.data()), size_(other.size()) {}

  /// Views a contiguous host container (lvalue only). Host spans only.
  /// @throws shuffle_r1::error (errc::invalid_argument) for a strided Eigen object.
  template <class C, memory_space S = Space,
            class = std::enable_if_t<
                S == memory_space::host && !std::is_same_v<std::remove_cv_t<C>, basic_span> &&
                detail::has_data_size<C>::value &&
                std::is_convertible_v<
                    std::remove_pointer_t<decltype(std::declval<C&>().data())> (*)[],  // NOLINT
                    T (*)[]>>>                                                         // NOLINT
  basic_span(C& container)  // NOLINT(google-explicit-constructor): views convert implicitly
      : data_(container.data()), size_(static_cast<size_type>(container.size())) {
    detail::check_contiguous(container);
  }

  SHUFFLE_R1_HD constexpr T* data() const noexcept { return data_; }
  SHUFFLE_R1_HD constexpr size_type size() const noexcept { return size_; }
  SHUFFLE_R1_HD constexpr bool empty() const noexcept { return size_ == 0; }
  /// @pre `i < size()`; no check.
  SHUFFLE_R1_HD constexpr T& operator[](size_type i) const noexcept { return data_[i]; }
  SHUFFLE_R1_HD constexpr T* begin() const noexcept { return data_; }
  SHUFFLE_R1_HD constexpr T* end() const noexcept { return data_ + size_; }
  /// The first `count` elements. @pre `count <= size()`; no check.
  SHUFFLE_R1_HD constexpr basic_span first(size_type count) const noexcept {
    return basic_span(data_, count);
  }
  /// `count` elements from `offset`. @pre `offset + count <= size()`; no check.
  SHUFFLE_R1_HD constexpr basic_span subspan(size_type offset, size_type count) const noexcept {
    return basic_span(data_ + offset, count);
  }

 private:
  T* data_ = nullptr;
  size_type size_ = 0;
};

/// A view of host memory.
template <class T>
using host_span = basic_span<T, memory_space::host>;

/// A view of device (CUDA) memory. Only the CUDA overloads accept it.
template <class T>
using device_span = basic_span<T, memory_space::device>;

namespace detail {

template <class C>
using container_element_t = std::remove_pointer_t<decltype(std::declval<C&>().data())>;

template <class C, class = void>
struct host_viewable : std::false_type {};
template <class T>
struct host_viewable<host_span<T>, void> : std::true_type {};
template <class T>
struct host_viewable<const host_span<T>, void> : std::true_type {};
template <class C>
struct host_viewable<
    C, std::enable_if_t<has_data_size<C>::value &&
                        !std::is_same_v<std::remove_cv_t<C>, device_span<container_element_t<C>>> &&
                        !std::is_same_v<std::remove_cv_t<C>, host_span<container_element_t<C>>>>>
    : std::true_type {};

template <class C>
struct span_of {
  using type = host_span<container_element_t<C>>;
};
template <class T>
struct span_of<host_span<T>> {
  using type = host_span<T>;
};
template <class T>
struct span_of<const host_span<T>> {
  using type = host_span<T>;
};

}  // namespace detail

/// True when `C` is a host span or a contiguous host container that `host_span` can view.
template <class C>
inline constexpr bool is_host_viewable_v = detail::host_viewable<std::remove_reference_t<C>>::value;

/// The host span type that views `C`: `host_span<const float>` for a `const std::vector<float>`.
template <class C>
using host_view_t = typename detail::span_of<std::remove_reference_t<C>>::type;

/// Views a host container or span. @throws shuffle_r1::error for a strided Eigen object.
template <class C, class = std::enable_if_t<is_host_viewable_v<C>>>
host_view_t<C> as_host_span(C& container) {
  return host_view_t<C>(container);
}

}  // namespace shuffle_r1
