#!/bin/sh
# cmake_consumer.sh SRC BUILD CMAKE CC - ipckit used from another project, as CTest runs it:
#   1. install the build into a temporary prefix; every public function has a man page there;
#   2. a project finds it with find_package(ipckit CONFIG), links ipckit::ipckit and
#      ipckit::ipckit_static, and runs; a version it is not compatible with is refused;
#   3. a project embeds the source tree with add_subdirectory(), builds only the library (no
#      tool, no tests), links ipckit::ipckit_static, and runs.
set -eu
src=$1 build=$2 cmake=$3 cc=$4
here=$src/tests/cmake
tmp=$(mktemp -d /tmp/ipkt-cmake-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "cmake_consumer: $*" >&2; exit 1; }

"$cmake" --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "install"; }
man3=$tmp/prefix/share/man/man3
[ -f "$man3/ipckit.3" ] || fail "no ipckit.3"
n=0
for f in $(sed -n 's/^IPK_API [^(]*[ *]\(ipk_[a-z_]*\)(.*/\1/p' "$tmp/prefix/include/ipckit.h"); do
    [ -f "$man3/$f.3" ] || fail "no man page for $f"
    grep -q "^\.so man3/ipckit\.3" "$man3/$f.3" || fail "$f.3 is not a link to ipckit(3)"
    sed -n '/^\.SH NAME/,/^\.SH SYNOPSIS/p' "$man3/ipckit.3" | grep -qw "$f" ||
        fail "ipckit(3) does not name $f"
    n=$((n + 1))
done
[ "$n" -ge 30 ] || fail "only $n public functions found in ipckit.h"

project() { # name, CMakeLists template, extra cmake args...
    dir=$tmp/$1
    mkdir -p "$dir"
    cp "$here/$2" "$dir/CMakeLists.txt"
    cp "$here/consumer.c" "$dir/"
    shift 2
    "$cmake" -S "$dir" -B "$dir/build" -DCMAKE_C_COMPILER="$cc" "$@" >"$dir/log" 2>&1
}

project found find_package.cmake.txt -DCMAKE_PREFIX_PATH="$tmp/prefix" || { cat "$tmp/found/log"; fail "find_package configure"; }
"$cmake" --build "$tmp/found/build" >>"$tmp/found/log" 2>&1 || { cat "$tmp/found/log"; fail "find_package build"; }
"$tmp/found/build/consumer_shared" | grep -q "^ipckit .* ok$" || fail "consumer_shared"
"$tmp/found/build/consumer_static" | grep -q "^ipckit .* ok$" || fail "consumer_static"
if project too_new too_new.cmake.txt -DCMAKE_PREFIX_PATH="$tmp/prefix"; then
    fail "find_package(ipckit 99.0) accepted version $(sed -n 's/.*PACKAGE_VERSION "\(.*\)".*/\1/p' "$tmp/prefix"/lib*/cmake/ipckit/ipckitConfigVersion.cmake)"
fi

project embed embed.cmake.txt -DIPK_SRC="$src" || { cat "$tmp/embed/log"; fail "add_subdirectory configure"; }
"$cmake" --build "$tmp/embed/build" -j 2 >>"$tmp/embed/log" 2>&1 || { cat "$tmp/embed/log"; fail "add_subdirectory build"; }
"$tmp/embed/build/consumer_embedded" | grep -q "^ipckit .* ok$" || fail "consumer_embedded"
[ ! -e "$tmp/embed/build/ipckit/ipckit" ] || fail "the embedded build built the tool"
[ ! -d "$tmp/embed/build/ipckit/tests" ] || fail "the embedded build built the tests"
echo "cmake_consumer: $n man pages; find_package (shared, static, version); add_subdirectory: ok"
