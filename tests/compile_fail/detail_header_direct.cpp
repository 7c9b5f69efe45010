// Internal headers refuse direct inclusion.
#ifdef SHUFFLE_R1_EXPECT_OK
#include <shuffle_r1/config.hpp>
#endif
#include <shuffle_r1/detail/det_math.hpp>

double use(double x) {
  return shuffle_r1::detail::det_log(x);
}
