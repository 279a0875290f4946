# SPDX-License-Identifier: MIT
# Writes python-written.safetensors byte for byte as the Python `safetensors` library
# (safetensors.torch.save_file / safetensors.numpy.save_file, i.e. Rust `safetensors::serialize`)
# would, built from the format's specification with the standard library only, because the
# `safetensors` package cannot be installed here. Run: python3 test/fixtures-bin/make_safetensors.py
#
# What the library does, and this script repeats:
# - tensors are laid out sorted by dtype, in descending order of the library's Dtype enum
#   (BOOL < U8 < I8 < F8_E5M2 < F8_E4M3 < I16 < U16 < F16 < BF16 < I32 < U32 < F32 < F64 < I64 < U64),
#   then by name; offsets are relative to the start of the data section, packed with no gaps;
# - the header is compact JSON (serde_json): "__metadata__" first, then the tensors in layout order,
#   each as {"dtype":..,"shape":[..],"data_offsets":[begin,end]};
# - the header is padded with spaces (0x20) to a multiple of 8 bytes, and its length is written
#   first as an unsigned 64-bit little-endian integer; all data is little-endian.
import json
import os
import struct

RANK = ['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64']


def bf16(x):
    # bfloat16 = the top 16 bits of the f32, rounded to nearest even.
    b = struct.unpack('<I', struct.pack('<f', x))[0]
    return (b + 0x7FFF + ((b >> 16) & 1)) >> 16


# name -> (dtype, shape, values); values are what the test expects back.
tensors = {
    'linear.weight': ('F32', [2, 3], [0.5, -1.25, 3.0, 1e-3, -0.0, 123456.789]),
    'linear.bias': ('F32', [3], [0.1, 0.2, 0.3]),
    'embed.half': ('F16', [2, 2], [1.0, -2.5, 0.1, 65504.0]),
    'embed.bf16': ('BF16', [3], [1.0, -3.140625, 0.1]),
    'steps': ('I64', [], [1234567890123]),
    'counts': ('I32', [4], [-2147483648, -1, 0, 2147483647]),
    'mask': ('U8', [5], [0, 1, 255, 7, 128]),
    'double': ('F64', [2], [3.141592653589793, -1e-300]),
    'empty': ('F32', [0, 4], []),
}
pack = {
    'F64': lambda v: struct.pack('<%dd' % len(v), *v),
    'F32': lambda v: struct.pack('<%df' % len(v), *v),
    'F16': lambda v: struct.pack('<%de' % len(v), *v),  # struct's 'e' rounds to nearest even
    'BF16': lambda v: struct.pack('<%dH' % len(v), *[bf16(x) for x in v]),
    'I64': lambda v: struct.pack('<%dq' % len(v), *v),
    'I32': lambda v: struct.pack('<%di' % len(v), *v),
    'U8': lambda v: struct.pack('<%dB' % len(v), *v),
}
metadata = {'format': 'pt'}

order = sorted(tensors, key=lambda n: (-RANK.index(tensors[n][0]), n.encode('utf-8')))
parts = ['"__metadata__":' + json.dumps(metadata, separators=(',', ':'))]
data = b''
for name in order:
    dtype, shape, values = tensors[name]
    blob = pack[dtype](values)
    parts.append('%s:{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}' % (
        json.dumps(name), dtype, ','.join(str(d) for d in shape), len(data), len(data) + len(blob)))
    data += blob
header = ('{' + ','.join(parts) + '}').encode('utf-8')
header += b' ' * ((8 - len(header) % 8) % 8)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'python-written.safetensors')
with open(out, 'wb') as f:
    f.write(struct.pack('<Q', len(header)) + header + data)
print('wrote', out, 8 + len(header) + len(data), 'bytes')
