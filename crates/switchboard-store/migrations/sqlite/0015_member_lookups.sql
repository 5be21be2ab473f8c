-- A user's teams, managed teams and queues by user: read for every signed-in request and
-- every presence change. The primary keys lead with the team or queue.
CREATE INDEX team_members_user ON team_members (user_id);
CREATE INDEX team_managers_user ON team_managers (user_id);
CREATE INDEX queue_agents_user ON queue_agents (user_id);
