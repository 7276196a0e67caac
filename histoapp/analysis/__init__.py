"""The Dashboard's analysis of finished runs, apart from run control (``histoapp.runs``): result tables and
curves read from run folders (``results``), their figures (``figures``) and the CSV / HTML export (``report``)."""
