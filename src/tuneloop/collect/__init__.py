"""Collection: the streaming query over the posts source, and the watermark."""
