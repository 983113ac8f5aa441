// MpiSession's settings of the MPI library, read back through the MPI tool interface (MPI_T),
// which Open MPI uses to expose its MCA parameters.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdlib>
#include <cstring>
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

TEST(MpiSession, WaitingThreadsYieldTheirCoreUnlessTheUserSaidOtherwise) {
  const char* env = std::getenv("OMPI_MCA_mpi_yield_when_idle");
  ASSERT_NE(env, nullptr) << "MpiSession sets OMPI_MCA_mpi_yield_when_idle before MPI_Init";
  const int value = read_cvar("mpi_yield_when_idle");
  ASSERT_GE(value, 0) << "Open MPI has no control variable mpi_yield_when_idle";
  const bool user_off = std::strcmp(env, "0") == 0 || std::strcmp(env, "false") == 0;
  EXPECT_EQ(value, user_off ? 0 : 1);
}

}  // namespace
