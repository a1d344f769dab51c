"""A code bug: print a line, then die on a KeyError (a Python traceback on stderr)."""
import sys

print("codebug: handling a request", flush=True)
user = {}
print(user["name"], file=sys.stderr)
