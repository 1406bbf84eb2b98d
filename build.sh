#!/bin/sh
# build.sh - the two commands a newcomer needs, and the ones CI runs.
#
#   ./build.sh tour    install what the build needs, build, run `ipckit tour`
#   ./build.sh test    install what the tests need, build, run the suite plainly, again
#                      under AddressSanitizer + UndefinedBehaviorSanitizer, and under valgrind;
#                      also checks that Debug and Release builds compile with -Werror
#   ./build.sh build   install build needs and build into ./build only
#
# Missing Debian packages are installed with apt-get (as root, or through sudo).
set -eu
cd "$(dirname "$0")"

JOBS=$(nproc 2>/dev/null || echo 2)
BUILD_DEPS="gcc make cmake pkg-config libnats-dev"
TEST_DEPS="$BUILD_DEPS libcmocka-dev libzmq3-dev libnng-dev valgrind procps python3 nats-server iproute2 openssl"

need() {
    missing=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    echo "build.sh: installing$missing" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >&2
}

build() { # dir, extra cmake args...
    dir=$1
    shift
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build "$dir" -j "$JOBS"
}

suite() { # dir
    (cd "$1" && ctest --output-on-failure -j "$JOBS" --timeout 600)
}

# Every test program and fuzz corpus replay under valgrind's memcheck (two at a time). Leaks are
# LeakSanitizer's job (valgrind would count the memory of children that _exit). IPKT_SLOW widens
# the signal storms, which would otherwise starve a process running 50x slower. Excluded, because
# valgrind itself catches every signal and so changes what /proc/PID/status reports: signal's
# t_peer_checks.
valgrind_suite() { # dir
    find "$1/tests" "$1/fuzz" -maxdepth 1 -type f -perm -u+x \
        \( -name 'test_*' -o -name 'fuzz_replay_*' \) ! -name test_cli |
        IPKT_SLOW=1 IPKT_EXCLUDE=t_peer_checks \
        xargs -P "$JOBS" -I{} sh -c 'valgrind -q --error-exitcode=99 --leak-check=no {} \
            >{}.valgrind.log 2>&1 || { cat {}.valgrind.log; echo "valgrind: {} failed"; exit 1; }'
}

case "${1:-}" in
tour)
    need $BUILD_DEPS
    build build -DIPK_TESTS=OFF
    exec ./build/ipckit tour
    ;;
build)
    need $BUILD_DEPS
    build build -DIPK_TESTS=OFF
    ;;
test)
    need $TEST_DEPS
    build build -DIPK_TESTS=ON
    suite build
    # A build with transports switched off: their schemes stay known and say IPK_ENOTBUILT.
    cmake -S . -B build-min -DIPK_TESTS=ON -DIPK_BENCH=OFF -DIPK_EXAMPLES=OFF \
        -DIPK_TRANSPORT_SHM=OFF -DIPK_TRANSPORT_SIGNAL=OFF >/dev/null
    cmake --build build-min -j "$JOBS" --target test_registry ipckit_tool
    IPKT_EXPECT_OFF="shm signal" ./build-min/tests/test_registry
    # Every build type compiles with -Werror: gcc's warnings (format-truncation, maybe-uninitialized)
    # depend on the optimisation level, and a user's Debug or Release build must not fail.
    for type in Debug Release; do
        cmake -S . -B "build-$type" -DCMAKE_BUILD_TYPE=$type -DIPK_TESTS=ON >/dev/null
        cmake --build "build-$type" -j "$JOBS" >/dev/null
    done
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        build build-asan -DIPK_TESTS=ON -DIPK_SANITIZE=ON
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        suite build-asan
    valgrind_suite build
    echo "build.sh: all tests passed, plain, under ASan+UBSan and under valgrind"
    ;;
*)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
