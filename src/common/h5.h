// Thin, checked helpers over the HDF5 C API: owning handles, attributes, whole-dataset I/O.
// Every failure throws odyssey::Error naming the file and the object.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace odyssey::h5 {

// An owned hid_t, closed with the matching H5?close on destruction.
class Handle {
 public:
  Handle() = default;
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_, close_ = o.close_;
      o.id_ = -1;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = -1;
  }
  // Closes now and returns the close function's result (reset() drops it).
  herr_t close() {
    const herr_t r = id_ >= 0 && close_ ? close_(id_) : 0;
    id_ = -1;
    return r;
  }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

// Turns off HDF5's own error printing (our errors say what failed); call once per process.
void quiet_errors();
// ": <the OS's reason>" (errno's text, "No space left on device") from the HDF5 error stack of
// the call that just failed on this thread, or "" when it holds none. For error messages.
std::string os_reason();

Handle open_file(const std::string& path, bool writable);
Handle create_file(const std::string& path);  // truncates
// Flushes a file written through create_file, fsyncs HDF5's own descriptor and closes it, each
// step checked (errors name path): a write-back error (NFS, a quota) that close(2) reports would
// otherwise be lost in an unchecked H5Fclose, and a later fsync on a new descriptor returns 0.
// The file's other handles must be closed first (else the descriptor closes with the last of
// them, unchecked; the fsync still reported its errors). Under the HDF5 lock.
void flush_sync_close(Handle& file, const std::string& path);
Handle open_dataset(hid_t file, const std::string& name, const std::string& path);
Handle create_group(hid_t loc, const std::string& name, const std::string& path);
bool exists(hid_t loc, const std::string& name);

std::vector<hsize_t> dims(hid_t dataset, const std::string& what);

// Attributes on any object; `path` and `what` only name things in error messages.
void write_attr(hid_t obj, const std::string& name, const std::string& value);
void write_attr(hid_t obj, const std::string& name, int64_t value);
void write_attr(hid_t obj, const std::string& name, double value);
void write_attr(hid_t obj, const std::string& name, const std::vector<std::string>& values);
void write_attr(hid_t obj, const std::string& name, const std::vector<double>& values);
bool has_attr(hid_t obj, const std::string& name);
std::string read_attr_string(hid_t obj, const std::string& name, const std::string& path);
int64_t read_attr_int(hid_t obj, const std::string& name, const std::string& path);
double read_attr_double(hid_t obj, const std::string& name, const std::string& path);
std::vector<std::string> read_attr_strings(hid_t obj, const std::string& name,
                                           const std::string& path);
std::vector<double> read_attr_doubles(hid_t obj, const std::string& name, const std::string& path);

// Writes a dataset of the given native type (H5T_NATIVE_*) and shape; chunk0 > 0 chunks along
// the first dimension.
void write_dataset(hid_t loc, const std::string& name, hid_t type, const std::vector<hsize_t>& shape,
                   const void* data, const std::string& path, hsize_t chunk0 = 0);

}  // namespace odyssey::h5
