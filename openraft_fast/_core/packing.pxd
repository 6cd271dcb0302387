# Fixed-width integers in byte buffers, little-endian on the wire and on disk (the WAL records,
# the wire codec). memcpy so unaligned access is fine; the hosts we build for (x86-64, aarch64)
# are little-endian, so no byte swap.
from libc.stdint cimport int64_t, uint32_t
from libc.string cimport memcpy


cdef inline void put_u32(char* p, uint32_t v) noexcept nogil:
    memcpy(p, &v, 4)


cdef inline void put_i64(char* p, int64_t v) noexcept nogil:
    memcpy(p, &v, 8)


cdef inline uint32_t get_u32(const unsigned char* p) noexcept nogil:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v


cdef inline int64_t get_i64(const unsigned char* p) noexcept nogil:
    cdef int64_t v
    memcpy(&v, p, 8)
    return v
