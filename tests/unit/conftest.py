"""Unit tests import the collection as ansible_collections.trustroot.ops from this checkout."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, '.cache', 'collections'))
