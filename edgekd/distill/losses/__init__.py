"""edgekd.distill.losses"""
