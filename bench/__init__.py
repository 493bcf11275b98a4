"""The benchmark: sentryctl against the SSH floor and bare ansible-playbook on the same lab hosts, in one run.

``bench/run --hosts 5,10,20`` (root, like the lab). Every measured step runs as a subprocess; its wall time comes
from ``time.monotonic``, its controller CPU seconds and peak memory from ``os.wait4`` (the child and every
descendant it waited for), the CPU the lab hosts spent from their cgroups, and the SSH logins from the hosts'
sshd journals (read from outside the hosts, so counting costs no login). Results are ratios of steps measured in
the same run on the same hosts: on a shared 2-core machine absolute times are noise.
"""
