"""The researcher's workflow over the library: the demo (the paper's headline claims on
this host), the paper reproductions from the CLI, and parameter sweeps.

    keusim.demo()                         keusim demo
    keusim.reproduce(["paper_table"])     keusim reproduce paper_table --quick
    keusim.sweep("pingpong", grid={...})  keusim sweep pingpong --grid size=64,1024 ...
"""
