"""Execution-checked training examples from a repository's own code (``doctune generate code``).

The pieces, one module each:

* :mod:`.tree`: the repository rebuilt from its ``code_units`` (module units hold whole files), module names,
  a unit's text replaced (by a mutant or a model's answer);
* :mod:`.calls`: example calls of a function (its docstring's doctests, values from its annotations and defaults,
  the generator model's proposals) and their results, recorded by running the original in the sandbox;
* :mod:`.tests`: the repository's test style, and characterization tests written from recorded calls;
* :mod:`.explain`: explanations built from the unit (docstring, parameters, calls, returns) or written by a model,
  and the check that an explanation names only identifiers the unit has;
* :mod:`.checks`: mutants caught or not, and the pass@1 scorer of a model's code;
* :mod:`.build`: per unit, the examples of each kind with their test code and verdict;
* :mod:`.judge`: model-written explanations and a judge of them that must pass its own check;
* :mod:`.recheck`: re-running an example's stored check from its fields.

Code runs only in :mod:`doctune.sandbox` (which refuses without OS-level isolation).
"""

from __future__ import annotations

#: the example kinds, in the order they are made
CODE_KINDS = ("docstring_to_code", "explain", "write_test", "fix_bug")
