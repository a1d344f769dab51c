"""A Python agent that a PM2 file starts with cmd: "agent.py" (PM2 reads it as the script)."""
import argparse
import time

parser = argparse.ArgumentParser()
parser.add_argument("--every", type=float, default=1.0)
every = parser.parse_args().every

print("metrics-agent: sampling", flush=True)
try:
    while True:
        time.sleep(every)
except KeyboardInterrupt:
    print("metrics-agent: SIGINT, flushing the last samples", flush=True)
