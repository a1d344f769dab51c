"""Spends its time in a function with a known name (``profile cpu`` and ``profile stack`` find it)."""


def spin_in_a_known_function() -> None:
    while True:
        sum(i * i for i in range(2000))


if __name__ == "__main__":
    print("spinning", flush=True)
    spin_in_a_known_function()
