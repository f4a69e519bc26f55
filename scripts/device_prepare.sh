#!/usr/bin/env bash
# device_prepare.sh — on the development machine: fill the ignored folder
# .device/ with what the GPU machine lacks (cJSON's header and library, the
# xxHash header) and the data the GPU tests and benchmarks read (stories260K,
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
cp "$S"/models/stories260K/* $D/shared/models/stories260K/
cp "$S"/data/tinystories/valid_prefix.txt $D/shared/data/tinystories/
du -sh $D
