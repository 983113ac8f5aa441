#include "common/h5.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"
#include "common/file.h"

namespace odyssey::h5 {

namespace {
const char* kNotShard = "is it a file written by Odyssey (shardify or a checkpoint)?";
}

void quiet_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

std::string os_reason() {
  // The file drivers record errno in their message ("... errno = 28, error message = 'No space
  // left on device', ..."): the innermost such text on this thread's error stack.
  std::string found;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
        auto* text = static_cast<std::string*>(out);
        if (!text->empty() || e->desc == nullptr) return 0;
        const std::string desc = e->desc;
        const std::string key = "error message = '";
        const size_t at = desc.find(key);
        if (at == std::string::npos) return 0;
        const size_t end = desc.find('\'', at + key.size());
        *text = desc.substr(at + key.size(), end == std::string::npos ? std::string::npos : end - at - key.size());
        return 0;
      },
      &found);
  return found.empty() ? "" : ": " + found;
}

Handle open_file(const std::string& path, bool writable) {
  quiet_errors();
  hid_t id = H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT);
  ODY_CHECK(id >= 0, "cannot open HDF5 file '" + path + "'",
            "the file is missing, unreadable, truncated or not HDF5");
  return Handle(id, H5Fclose);
}

Handle create_file(const std::string& path) {
  quiet_errors();
  hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ODY_CHECK(id >= 0, "cannot create HDF5 file '" + path + "'" + os_reason(),
            "is the folder writable and the disk not full?");
  return Handle(id, H5Fclose);
}

void flush_sync_close(Handle& file, const std::string& path) {
  ODY_CHECK(H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0, "cannot flush '" + path + "'" + os_reason(),
            "is the disk full or over quota?");
  // The sec2 driver's descriptor (create_file's default driver); another driver (HDF5_DRIVER) is
  // fsync'd by path after the close.
  Handle fapl(H5Fget_access_plist(file), H5Pclose);
  int* fd = nullptr;
  const bool own = fapl.get() >= 0 && H5Pget_driver(fapl) == H5FD_SEC2 &&
                   H5Fget_vfd_handle(file, H5P_DEFAULT, reinterpret_cast<void**>(&fd)) >= 0 && fd != nullptr;
  if (own) {
    const int rc = ::fsync(*fd);
    const int err = errno;
    ODY_CHECK(rc == 0, "fsync of '" + path + "' failed: " + std::strerror(err),
              "is the disk full, over quota or failing?");
  }
  fapl.reset();
  ODY_CHECK(file.close() >= 0, "cannot close '" + path + "'" + os_reason(),
            "is the disk full, over quota or failing?");
  if (!own) fsync_path(path, /*directory=*/false);
}

bool exists(hid_t loc, const std::string& name) {
  // Check each path component, as H5Lexists requires.
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    size_t next = name.find('/', pos + 1);
    partial = name.substr(0, next);
    if (!partial.empty() && partial != "/" && H5Lexists(loc, partial.c_str(), H5P_DEFAULT) <= 0)
      return false;
    pos = next;
  }
  return true;
}

Handle open_dataset(hid_t file, const std::string& name, const std::string& path) {
  ODY_CHECK(exists(file, name), "'" + path + "' has no dataset '" + name + "'", kNotShard);
  hid_t id = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
  ODY_CHECK(id >= 0, "cannot open dataset '" + name + "' in '" + path + "'", kNotShard);
  return Handle(id, H5Dclose);
}

Handle create_group(hid_t loc, const std::string& name, const std::string& path) {
  hid_t id = H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ODY_CHECK(id >= 0, "cannot create group '" + name + "' in '" + path + "'" + os_reason(), "");
  return Handle(id, H5Gclose);
}

std::vector<hsize_t> dims(hid_t dataset, const std::string& what) {
  Handle space(H5Dget_space(dataset), H5Sclose);
  int rank = H5Sget_simple_extent_ndims(space);
  ODY_CHECK(rank >= 0, "cannot read the shape of " + what, "");
  std::vector<hsize_t> d(rank);
  H5Sget_simple_extent_dims(space, d.data(), nullptr);
  return d;
}

namespace {

void write_attr_raw(hid_t obj, const std::string& name, hid_t type, hid_t space, const void* buf) {
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  Handle attr(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  ODY_CHECK(attr.get() >= 0 && H5Awrite(attr, type, buf) >= 0,
            "cannot write HDF5 attribute '" + name + "'" + os_reason(), "");
}

Handle open_attr(hid_t obj, const std::string& name, const std::string& path) {
  ODY_CHECK(H5Aexists(obj, name.c_str()) > 0,
            "'" + path + "' lacks the attribute '" + name + "'", kNotShard);
  return Handle(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose);
}

// open_attr for an attribute that must hold one value: an array (h5py writes a list as one) is
// an error naming it, not a read past the one value's memory.
Handle open_scalar_attr(hid_t obj, const std::string& name, const std::string& path) {
  Handle attr = open_attr(obj, name, path);
  Handle space(H5Aget_space(attr), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  ODY_CHECK(n == 1, "attribute '" + name + "' of '" + path + "' holds " + std::to_string(n) + " values, not one",
            kNotShard);
  return attr;
}

Handle vlen_string_type() {
  Handle t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

}  // namespace

void write_attr(hid_t obj, const std::string& name, const std::string& value) {
  Handle type = vlen_string_type();
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  const char* p = value.c_str();
  write_attr_raw(obj, name, type, space, &p);
}

void write_attr(hid_t obj, const std::string& name, int64_t value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  write_attr_raw(obj, name, H5T_NATIVE_INT64, space, &value);
}

void write_attr(hid_t obj, const std::string& name, double value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  write_attr_raw(obj, name, H5T_NATIVE_DOUBLE, space, &value);
}

void write_attr(hid_t obj, const std::string& name, const std::vector<std::string>& values) {
  Handle type = vlen_string_type();
  hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  write_attr_raw(obj, name, type, space, ptrs.data());
}

void write_attr(hid_t obj, const std::string& name, const std::vector<double>& values) {
  hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  write_attr_raw(obj, name, H5T_NATIVE_DOUBLE, space, values.data());
}

bool has_attr(hid_t obj, const std::string& name) { return H5Aexists(obj, name.c_str()) > 0; }

std::string read_attr_string(hid_t obj, const std::string& name, const std::string& path) {
  Handle attr = open_scalar_attr(obj, name, path);
  Handle ftype(H5Aget_type(attr), H5Tclose);
  ODY_CHECK(H5Tget_class(ftype) == H5T_STRING,
            "attribute '" + name + "' of '" + path + "' is not a string", kNotShard);
  if (H5Tis_variable_str(ftype) > 0) {
    Handle type = vlen_string_type();
    char* p = nullptr;
    ODY_CHECK(H5Aread(attr, type, &p) >= 0, "cannot read attribute '" + name + "' of " + path, "");
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  size_t n = H5Tget_size(ftype);
  std::string s(n, '\0');
  ODY_CHECK(H5Aread(attr, ftype, s.data()) >= 0, "cannot read attribute '" + name + "' of " + path,
            "");
  return s.substr(0, s.find('\0'));
}

int64_t read_attr_int(hid_t obj, const std::string& name, const std::string& path) {
  Handle attr = open_scalar_attr(obj, name, path);
  int64_t v = 0;
  ODY_CHECK(H5Aread(attr, H5T_NATIVE_INT64, &v) >= 0,
            "attribute '" + name + "' of '" + path + "' is not an integer", kNotShard);
  return v;
}

double read_attr_double(hid_t obj, const std::string& name, const std::string& path) {
  Handle attr = open_scalar_attr(obj, name, path);
  double v = 0;
  ODY_CHECK(H5Aread(attr, H5T_NATIVE_DOUBLE, &v) >= 0,
            "attribute '" + name + "' of '" + path + "' is not a number", kNotShard);
  return v;
}

std::vector<std::string> read_attr_strings(hid_t obj, const std::string& name,
                                           const std::string& path) {
  Handle attr = open_attr(obj, name, path);
  Handle space(H5Aget_space(attr), H5Sclose);
  hssize_t n = H5Sget_simple_extent_npoints(space);
  Handle type = vlen_string_type();
  std::vector<char*> ptrs(n > 0 ? n : 0, nullptr);
  ODY_CHECK(H5Aread(attr, type, ptrs.data()) >= 0,
            "attribute '" + name + "' of '" + path + "' is not a list of strings", kNotShard);
  std::vector<std::string> out;
  for (char* p : ptrs) {
    out.emplace_back(p ? p : "");
    H5free_memory(p);
  }
  return out;
}

std::vector<double> read_attr_doubles(hid_t obj, const std::string& name, const std::string& path) {
  Handle attr = open_attr(obj, name, path);
  Handle space(H5Aget_space(attr), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  std::vector<double> out(n > 0 ? n : 0);
  ODY_CHECK(n >= 0 && H5Aread(attr, H5T_NATIVE_DOUBLE, out.data()) >= 0,
            "attribute '" + name + "' of '" + path + "' is not a list of numbers", kNotShard);
  return out;
}

void write_dataset(hid_t loc, const std::string& name, hid_t type, const std::vector<hsize_t>& shape,
                   const void* data, const std::string& path, hsize_t chunk0) {
  Handle space(H5Screate_simple(static_cast<int>(shape.size()), shape.data(), nullptr), H5Sclose);
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (chunk0 > 0 && !shape.empty() && shape[0] > 0) {
    std::vector<hsize_t> chunk = shape;
    chunk[0] = std::min(chunk0, shape[0]);
    H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data());
  }
  Handle ds(H5Dcreate2(loc, name.c_str(), type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), H5Dclose);
  ODY_CHECK(ds.get() >= 0, "cannot create dataset '" + name + "' in '" + path + "'" + os_reason(),
            "is the disk full?");
  if (data)
    ODY_CHECK(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0,
              "cannot write dataset '" + name + "' in '" + path + "'" + os_reason(), "is the disk full?");
}

}  // namespace odyssey::h5
