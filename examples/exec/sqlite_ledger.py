#!/usr/bin/env python3
"""A verity exec adapter (docs/protocols/exec.md) that keeps the ledger in SQLite.

verity starts one process per worker and talks to it in JSON lines: a `hello`, then one request
per line, each answered by one reply line naming the request's id. All processes share one
database file, and SQLite serializes writers, so the ledger is serializable: verity should judge
it valid on every workload.

Usage:
  verity run --target exec --cmd "python3 examples/exec/sqlite_ledger.py"
  verity run --target exec --workload ledger-append --cmd "python3 examples/exec/sqlite_ledger.py"

The database is $VERITY_DATA_DIR/ledger.db (verity sets it to a directory of the run), or the path
given as the first argument. `--misbehave MODE --every N` breaks every N-th request on purpose —
after applying it — to show what verity does with an adapter that hangs (`hang`), dies (`exit`),
prints half a line (`truncated`), answers another request (`wrong-id`) or answers nonsense
(`wrong-type`): the operation ends `info` (or `fail` for a read), never a hang or a crash.

Standard library only.
"""

import argparse
import json
import os
import sqlite3
import sys
import time

WORKLOADS = ["bank", "ledger-append", "rw-register"]


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Ledger:
    def __init__(self, path, workload):
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA busy_timeout = 30000")
        self.registers = workload == "rw-register"

    def setup(self, value):
        db = self.db
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("BEGIN IMMEDIATE")
        for table in ["accounts", "transfers", "journals", "registers"]:
            db.execute(f"DROP TABLE IF EXISTS {table}")
        db.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)")
        db.execute("CREATE TABLE transfers (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                   "id INTEGER NOT NULL UNIQUE)")
        db.execute("CREATE TABLE journals (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        db.execute("CREATE TABLE registers (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
        for i, b in enumerate(value.get("balances", [])):
            db.execute("INSERT INTO accounts VALUES (?, ?)", (i, b))
        db.execute("COMMIT")
        return {"type": "ok"}

    def transfer(self, t):
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("SELECT 1 FROM transfers WHERE id = ?", (t["id"],)).fetchone():
                db.execute("COMMIT")
                return {"type": "ok"}  # a retry of a transfer already applied
            (balance,) = db.execute("SELECT balance FROM accounts WHERE id = ?",
                                    (t["from"],)).fetchone()
            if balance < t["amount"]:
                db.execute("ROLLBACK")
                return {"type": "fail", "error": "insufficient-funds"}
            db.execute("UPDATE accounts SET balance = balance - ? WHERE id = ?",
                       (t["amount"], t["from"]))
            db.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?",
                       (t["amount"], t["to"]))
            db.execute("INSERT INTO transfers (id) VALUES (?)", (t["id"],))
            db.execute("COMMIT")
            return {"type": "ok"}
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def read(self, value):
        db = self.db
        db.execute("BEGIN")
        balances = [b for (b,) in db.execute("SELECT balance FROM accounts ORDER BY id")]
        out = {"balances": balances}
        if isinstance(value, dict) and value.get("final"):
            out["applied"] = [i for (i,) in db.execute("SELECT id FROM transfers ORDER BY seq")]
        db.execute("COMMIT")
        return {"type": "ok", "value": out}

    def txn(self, mops):
        db = self.db
        writes = any(f != "r" for f, _, _ in mops)
        db.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
        try:
            done = []
            for f, k, v in mops:
                if f == "r" and self.registers:
                    row = db.execute("SELECT v FROM registers WHERE k = ?", (k,)).fetchone()
                    done.append([f, k, row[0] if row else None])
                elif f == "r":
                    row = db.execute("SELECT v FROM journals WHERE k = ?", (k,)).fetchone()
                    done.append([f, k, [int(x) for x in row[0].split(",")] if row else []])
                elif f == "append":
                    db.execute("INSERT INTO journals (k, v) VALUES (?, ?) ON CONFLICT (k) "
                               "DO UPDATE SET v = v || ',' || excluded.v", (k, str(v)))
                    done.append([f, k, v])
                elif f == "w":
                    db.execute("INSERT INTO registers (k, v) VALUES (?, ?) ON CONFLICT (k) "
                               "DO UPDATE SET v = excluded.v", (k, v))
                    done.append([f, k, v])
                else:
                    db.execute("ROLLBACK")
                    return {"type": "fail", "error": f"unsupported micro-op {f!r}"}
            db.execute("COMMIT")
            return {"type": "ok", "value": done}
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def handle(self, request):
        f, value = request.get("f"), request.get("value")
        if f == "setup":
            return self.setup(value or {})
        if f == "transfer":
            return self.transfer(value)
        if f == "read":
            return self.read(value)
        if f == "txn":
            return self.txn(value)
        return {"type": "fail", "error": f"unsupported operation {f!r}"}


def misbehave(mode, request_id, answer):
    if mode == "hang":
        time.sleep(3600)
    elif mode == "exit":
        sys.exit(3)
    elif mode == "truncated":
        sys.stdout.write(json.dumps(dict(answer, id=request_id))[:15] + "\n")
        sys.stdout.flush()
    elif mode == "wrong-id":
        reply(dict(answer, id=request_id + 1000))
    elif mode == "wrong-type":
        reply({"id": request_id, "type": [answer["type"]], "value": {"balances": "lots"}})


def main():
    p = argparse.ArgumentParser(description="a verity exec adapter over SQLite")
    p.add_argument("db", nargs="?", help="the database file (default: $VERITY_DATA_DIR/ledger.db)")
    p.add_argument("--misbehave", choices=["hang", "exit", "truncated", "wrong-id", "wrong-type"])
    p.add_argument("--every", type=int, default=10)
    a = p.parse_args()
    path = a.db or os.path.join(os.environ.get("VERITY_DATA_DIR", "."), "ledger.db")

    hello = json.loads(sys.stdin.readline() or "{}").get("hello", {})
    workload = hello.get("workload", "bank")
    reply({"hello": {"name": "sqlite-ledger", "workloads": WORKLOADS}})
    ledger = Ledger(path, workload)
    served = 0
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = ledger.handle(request)
        except sqlite3.Error as e:
            answer = {"type": "fail", "error": f"sqlite: {e}"}
        served += 1
        if a.misbehave and request.get("f") != "setup" and served % a.every == 0:
            misbehave(a.misbehave, request["id"], answer)
            continue
        reply(dict(answer, id=request["id"]))


if __name__ == "__main__":
    main()
