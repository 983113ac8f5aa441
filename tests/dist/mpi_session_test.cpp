// MpiSession's settings of the MPI library, read back through the MPI tool interface (MPI_T),
// which Open MPI uses to expose its MCA parameters.
#include <gtest/gtest.h>
#include <mpi.h>

#include <fstream>
#include <string>

namespace {

// The value of an integer or boolean MPI_T control variable, or -1 when there is none by that name.
int read_cvar(const std::string& wanted) {
  int provided = 0;
  EXPECT_EQ(MPI_T_init_thread(MPI_THREAD_SINGLE, &provided), MPI_SUCCESS);
  int count = 0;
  MPI_T_cvar_get_num(&count);
  int value = -1;
  for (int i = 0; i < count && value < 0; ++i) {
    char name[256], desc[1024];
    int name_len = sizeof(name), desc_len = sizeof(desc), verbosity = 0, bind = 0, scope = 0;
    MPI_Datatype type;
    MPI_T_enum enumtype;
    if (MPI_T_cvar_get_info(i, name, &name_len, &verbosity, &type, &enumtype, desc, &desc_len,
                            &bind, &scope) != MPI_SUCCESS ||
        wanted != name)
      continue;
    MPI_T_cvar_handle handle;
    int elements = 0;
    EXPECT_EQ(MPI_T_cvar_handle_alloc(i, nullptr, &handle, &elements), MPI_SUCCESS);
    int v = 0;  // Open MPI's bool and int cvars are both read as MPI_INT
    EXPECT_EQ(MPI_T_cvar_read(handle, &v), MPI_SUCCESS);
    MPI_T_cvar_handle_free(&handle);
    value = v;
  }
  MPI_T_finalize();
  return value;
}

// The value the launcher gave a variable: /proc/self/environ is the environment the process
// started with, before MpiSession's setenv.
std::string launch_env(const std::string& name) {
  std::ifstream in("/proc/self/environ", std::ios::binary);
  std::string entry;
  while (std::getline(in, entry, '\0'))
    if (entry.rfind(name + "=", 0) == 0) return entry.substr(name.size() + 1);
  return "";
}

// Unset at launch: MpiSession turns it on. Set at launch (ctest runs the dist tests once more with
// OMPI_MCA_mpi_yield_when_idle=0): the user's value stands.
TEST(MpiSession, WaitingThreadsYieldTheirCoreUnlessTheUserSaidOtherwise) {
  const std::string at_launch = launch_env("OMPI_MCA_mpi_yield_when_idle");
  const int value = read_cvar("mpi_yield_when_idle");
  ASSERT_GE(value, 0) << "Open MPI has no control variable mpi_yield_when_idle";
  if (at_launch.empty()) {
    EXPECT_EQ(value, 1) << "MpiSession sets mpi_yield_when_idle when the user did not";
  } else {
    const bool off = at_launch == "0" || at_launch == "false" || at_launch == "no" || at_launch == "f";
    EXPECT_EQ(value, off ? 0 : 1) << "the user's OMPI_MCA_mpi_yield_when_idle=" << at_launch;
  }
}

}  // namespace
