import os
import signal
import sys
import time


def stop(signum, frame):
    print("mailer: SIGINT, queue saved", flush=True)
    sys.exit(0)


signal.signal(signal.SIGINT, stop)
print(f"mailer: mode {os.environ.get('MAIL_MODE', 'test')}", flush=True)
while True:
    time.sleep(1)
