"""The DVC stages' entry points, run as `python -m stages.<name>` from the repository root.

Running them as modules puts the checkout that DVC hashed first on the import path, so the
`dcgan` package they import is that checkout's, whichever copy of the project is running.
"""
