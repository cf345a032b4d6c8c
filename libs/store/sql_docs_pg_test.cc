// Every query in docs/sql.md runs against the current schema, as the read-only analyst role,
// so the SQL guide cannot drift from the migrations.
#include <gtest/gtest.h>

#include <fstream>
#include <pqxx/pqxx>
#include <regex>
#include <sstream>

#include "libs/store/testing/pg_test_env.h"

namespace temper {
namespace {

std::vector<std::string> DocQueries() {
  const char* src = std::getenv("TEMPER_SOURCE_DIR");
  std::ifstream in(std::string(src ? src : ".") + "/docs/sql.md");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string doc = ss.str();
  std::vector<std::string> out;
  std::regex block("```sql\\n([\\s\\S]*?)```");
  for (std::sregex_iterator it(doc.begin(), doc.end(), block), end; it != end; ++it) {
    std::string body = (*it)[1];
    size_t start = 0;
    for (size_t semi; (semi = body.find(";\n", start)) != std::string::npos; start = semi + 2)
      out.push_back(body.substr(start, semi - start));
  }
  return out;
}

TEST(SqlDocsTest, EveryQueryRunsAsTheAnalystRole) {
  auto queries = DocQueries();
  ASSERT_GE(queries.size(), 10u) << "docs/sql.md not found or lost its queries";
  auto& env = testing::PgTestEnv::Get();
  pqxx::connection c(env.conninfo());
  for (const auto& q : queries) {
    pqxx::work tx(c);
    tx.exec("SET ROLE temper_analyst");
    EXPECT_NO_THROW(tx.exec(q)) << q;
  }
}

}  // namespace
}  // namespace temper
