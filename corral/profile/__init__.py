"""Profiling a running app (spec P1-P3, H4): CPU profiles, stacks and heap snapshots.

The daemon never profiles in its own process: it starts :mod:`corral.profile.run` as its child
(so a tracee that allowed the daemon with ``PR_SET_PTRACER`` lets it trace), with a deadline,
and reads one JSON line back.  That helper runs py-spy (Python) or speaks the inspector's
protocol (Node), writes the files under ``CORRAL_HOME/profiles/<app>/`` and summarises them.
"""
