#!/usr/bin/env bash
# device_prepare.sh — on the development machine: fill the ignored folder
# .device/ with what the GPU machine lacks (cJSON's header and library, the
# xxHash header, LAPACKE with the reference LAPACK/BLAS it needs for the search's
# Gaussian process, libpng's headers for the plots) and the data the GPU tests and benchmarks read (stories260K,
# its tokenizer, the TinyStories text). Name .device in the device tool's carry.
set -euo pipefail
cd "$(dirname "$0")/.."
S=${QJ_SHARED:-../shared}
D=.device
mkdir -p $D/lib $D/include/cjson $D/shared/models/stories260K $D/shared/data/tinystories
cp /usr/include/cjson/cJSON.h $D/include/cjson/
cp /usr/include/xxhash.h $D/include/
cp -L "$(ldconfig -p | awk '/libcjson.so.1 /{print $NF; exit}')" $D/lib/libcjson.so.1
ln -sf libcjson.so.1 $D/lib/libcjson.so
# LAPACKE and the reference LAPACK + BLAS (Debian's liblapack3/libblas3: small, unlike OpenBLAS)
cp /usr/include/lapack.h /usr/include/lapacke*.h $D/include/
cp -L "$(ldconfig -p | awk '/liblapacke.so.3 /{print $NF; exit}')" $D/lib/liblapacke.so.3
for l in libtmglib.so.3 libgfortran.so.5 libquadmath.so.0; do
  cp -L "$(ldconfig -p | awk -v n="$l" '$1 == n {print $NF; exit}')" $D/lib/$l
done
tmp=$(mktemp -d)
(cd "$tmp" && apt-get download liblapack3 libblas3 >/dev/null 2>&1 && for d in *.deb; do dpkg-deb -x "$d" x; done)
cp -L "$tmp"/x/usr/lib/x86_64-linux-gnu/lapack/liblapack.so.3 "$tmp"/x/usr/lib/x86_64-linux-gnu/blas/libblas.so.3 $D/lib/
rm -rf "$tmp"
# libpng: headers and library (the device image has the runtime; this keeps the two in step)
cp /usr/include/png.h /usr/include/pngconf.h /usr/include/pnglibconf.h $D/include/
cp -L "$(ldconfig -p | awk '/libpng16.so.16 /{print $NF; exit}')" $D/lib/libpng16.so.16
cp "$S"/models/stories260K/* $D/shared/models/stories260K/
cp "$S"/data/tinystories/valid_prefix.txt $D/shared/data/tinystories/
du -sh $D
