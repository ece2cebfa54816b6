#pragma once
// A small RAII layer over SQLite for the services that keep durable state (outbox-uploader,
// dlq-escalator). One Database is one connection: not thread-safe, callers serialize access
// (each store holds a mutex). Errors throw SqliteError carrying SQLite's message.
//
// Databases open in WAL mode with synchronous=FULL: a committed transaction survives a
// process crash and a power cut, and readers in other processes (the `status` and `list`
// commands) never block the writer.
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace agentline::storage {

class SqliteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql);
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Parameters are 1-based, as in SQLite.
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, const std::string& text) { return bind(index, std::string_view(text)); }
  Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Statement& bind(int index, double value);
  Statement& bind_null(int index);
  Statement& bind(int index, const std::optional<std::string>& text);

  // Runs one step: true when a row is ready, false when done.
  bool step();
  // Runs to completion (for writes); returns the rows changed.
  std::int64_t run();
  void reset();

  std::string text(int column) const;  // "" for NULL
  std::optional<std::string> optional_text(int column) const;
  std::int64_t integer(int column) const;  // 0 for NULL
  double real(int column) const;
  bool is_null(int column) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

class Database {
 public:
  // Opens (creating when missing, with parent folders) the database at `path`.
  explicit Database(const std::string& path, int busy_timeout_ms = 10000);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  void exec(std::string_view sql);
  Statement prepare(std::string_view sql);
  std::int64_t last_insert_rowid() const;
  const std::string& path() const { return path_; }

  // BEGIN IMMEDIATE … COMMIT; rolls back when destroyed uncommitted (an exception).
  class Transaction {
   public:
    explicit Transaction(Database& db);
    ~Transaction();
    void commit();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

   private:
    Database& db_;
    bool done_ = false;
  };

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace agentline::storage
