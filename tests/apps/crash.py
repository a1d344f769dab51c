"""Exit with CODE (default 1) after MS milliseconds (default 0); print a line first."""
import sys
import time

code = int(sys.argv[1]) if len(sys.argv) > 1 else 1
ms = int(sys.argv[2]) if len(sys.argv) > 2 else 0
print(f"crash app pid running, exiting with {code} after {ms} ms", flush=True)
time.sleep(ms / 1000)
sys.exit(code)
