"""The one exception type that means "the user asked for something impossible".

The CLI turns an :class:`InputError` into a one-line message on stderr and exit
code 2.  Anything else that escapes is a bug in initcheck, not in the input.
"""


class InputError(Exception):
    """Bad input: impossible fans, an unknown name, a missing framework or device,
    a custom function that raises or returns the wrong thing."""
