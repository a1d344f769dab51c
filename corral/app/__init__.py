"""The small library a managed program may import (optional).

It never needs the daemon's code: only the standard library.
"""
