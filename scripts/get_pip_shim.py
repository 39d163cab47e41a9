"""Stand-in for the pip bootstrap script that ansible-test downloads from a host not reachable here.

ansible-test runs it inside a fresh virtualenv with pip's arguments. It installs pip from the
interpreter's bundled ensurepip (in a subprocess, so the machine's pip configuration stays in force)
and then runs pip with the same arguments, dropping options older pips do not know.
"""
import subprocess
import sys

subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade'], stdout=subprocess.DEVNULL)
args = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]
sys.exit(subprocess.call([sys.executable, '-m', 'pip', 'install'] + args))
