"""edgekd.pipeline"""
