#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Sphinx configuration of the cyborg-pmem documentation."""

import warnings

# show-options imports oslo.privsep, which imports eventlet, which warns
# with a nine-line banner about itself; only that message is ignored.
warnings.filterwarnings(
    'ignore', message=r'\s*Eventlet is deprecated', category=Warning
)

extensions = [
    'openstackdocstheme',
    # ".. show-options::" renders the options from their definitions.
    'oslo_config.sphinxext',
]

# openstackdocstheme
openstackdocs_repo_name = 'openstack/cyborg-pmem'
openstackdocs_use_storyboard = False
openstackdocs_auto_name = False
openstackdocs_bug_project = 'cyborg'
openstackdocs_bug_tag = 'pmem'

project = 'cyborg-pmem'
copyright = '2026, The cyborg-pmem Authors'
source_suffix = '.rst'
master_doc = 'index'
exclude_patterns = []
pygments_style = 'native'
html_theme = 'openstackdocs'
html_static_path = []
